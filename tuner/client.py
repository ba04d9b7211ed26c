"""A thin gRPC client of the scheduler, shared by the CLI and the TUI (never imports torch)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tuner.core import metadata
from tuner.v1 import (
    analysis_pb2,
    analysis_pb2_grpc,
    event_pb2,
    job_pb2,
    sweep_pb2,
    sweep_pb2_grpc,
    trainer_pb2,
    tuner_service_pb2,
    tuner_service_pb2_grpc,
)

Response = TypeVar("Response")
Item = TypeVar("Item")


class TunerClient:
    """One channel to the scheduler's services (jobs, sweeps, analysis); every call says who calls.

    `token` is sent as a bearer token; a server that knows tokens ignores `user`.
    `ca_file` (a CA certificate) turns TLS on.
    """

    def __init__(self, server: str, user: str, token: str = "", ca_file: str = "") -> None:
        self.server = server
        self.user = user
        if ca_file:
            with open(ca_file, "rb") as ca:
                credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
            self._channel = grpc.aio.secure_channel(server, credentials)
        else:
            self._channel = grpc.aio.insecure_channel(server)
        self._stub = tuner_service_pb2_grpc.TunerServiceStub(self._channel)
        self._sweeps = sweep_pb2_grpc.SweepServiceStub(self._channel)
        self._analysis = analysis_pb2_grpc.AnalysisServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        headers = [(metadata.USER, user)]
        if token:
            headers.append((metadata.AUTHORIZATION, f"Bearer {token}"))
        self._metadata = tuple(headers)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> TunerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def submit(self, hp: job_pb2.Hyperparameters) -> tuner_service_pb2.SubmitJobResponse:
        request = tuner_service_pb2.SubmitJobRequest(hyperparameters=hp)
        return await self._stub.SubmitJob(request, metadata=self._metadata)

    async def get(self, job_id: str) -> job_pb2.Job:
        request = tuner_service_pb2.GetJobRequest(job_id=job_id)
        response = await self._stub.GetJob(request, metadata=self._metadata)
        return response.job

    async def find(self, hp: job_pb2.Hyperparameters) -> job_pb2.Job:
        request = tuner_service_pb2.FindJobRequest(hyperparameters=hp)
        response = await self._stub.FindJob(request, metadata=self._metadata)
        return response.job

    async def list(
        self,
        states: Sequence[int] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> tuner_service_pb2.ListJobsResponse:
        request = tuner_service_pb2.ListJobsRequest(
            states=cast("builtins.list[job_pb2.JobState]", builtins.list(states)),
            page_size=page_size,
            page_token=page_token,
        )
        return await self._stub.ListJobs(request, metadata=self._metadata)

    async def leaderboard(
        self,
        limit: int = 0,
        dataset: job_pb2.Dataset = job_pb2.DATASET_UNSPECIFIED,
        model: job_pb2.Model = job_pb2.MODEL_UNSPECIFIED,
    ) -> builtins.list[job_pb2.Job]:
        """The best jobs of `dataset` (the server reads unspecified as MNIST), of every model
        or only of `model`."""
        request = tuner_service_pb2.GetLeaderboardRequest(limit=limit, dataset=dataset, model=model)
        response = await self._stub.GetLeaderboard(request, metadata=self._metadata)
        return list(response.jobs)

    async def cancel(self, job_id: str) -> job_pb2.Job:
        request = tuner_service_pb2.CancelJobRequest(job_id=job_id)
        response = await self._stub.CancelJob(request, metadata=self._metadata)
        return response.job

    def watch(
        self, job_id: str, after_sequence: int = 0
    ) -> AsyncIterator[tuner_service_pb2.WatchJobResponse]:
        """The job as it is, then its events until it ends."""
        request = tuner_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=after_sequence)
        call = self._stub.WatchJob(request, metadata=self._metadata)
        return _stream(call, lambda response: response)

    async def watch_events(self, after_sequence: int = 0) -> AsyncIterator[event_pb2.JobEvent]:
        """Every job's events, from the next new one (or after `after_sequence`)."""
        async for response in self.watch_feed(after_sequence, trainers=False):
            if response.HasField("event"):
                yield response.event

    def watch_feed(
        self, after_sequence: int = 0, trainers: bool = True
    ) -> AsyncIterator[tuner_service_pb2.WatchEventsResponse]:
        """The dashboards' feed: job events as watch_events, and with `trainers` the trainer
        set first (trainer_set), then each trainer that appears, changes or leaves."""
        request = tuner_service_pb2.WatchEventsRequest(
            after_sequence=after_sequence, include_trainers=trainers
        )
        call = self._stub.WatchEvents(request, metadata=self._metadata)
        return _stream(call, lambda response: response)

    async def list_trainers(self) -> builtins.list[trainer_pb2.TrainerStatus]:
        """The trainers the scheduler hears from now, by name."""
        request = tuner_service_pb2.ListTrainersRequest()
        response = await self._stub.ListTrainers(request, metadata=self._metadata)
        return builtins.list(response.trainers)

    async def caller(self) -> str:
        """The user the scheduler takes this client for (by its token, where tokens are on)."""
        request = tuner_service_pb2.GetCallerRequest()
        return (await self._stub.GetCaller(request, metadata=self._metadata)).user

    async def status(self, timeout: float = 10.0) -> tuner_service_pb2.GetStatusResponse:
        """What the scheduler reaches and how much work waits."""
        request = tuner_service_pb2.GetStatusRequest()
        return await self._stub.GetStatus(request, metadata=self._metadata, timeout=timeout)

    async def health(self, timeout: float = 5.0) -> str:
        """The scheduler's grpc.health.v1 status name ("SERVING", "NOT_SERVING", ...)."""
        response = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    def model(
        self, job_id: str, model_format: int = 0
    ) -> AsyncIterator[tuner_service_pb2.GetModelResponse]:
        """A SUCCEEDED job's final model: its header (size, SHA-256), then its chunks."""
        request = tuner_service_pb2.GetModelRequest(
            job_id=job_id, format=cast("job_pb2.ModelFormat", model_format)
        )
        call = self._stub.GetModel(request, metadata=self._metadata)
        return _stream(call, lambda response: response)

    async def create_sweep(self, spec: sweep_pb2.SweepSpec) -> sweep_pb2.Sweep:
        request = sweep_pb2.CreateSweepRequest(spec=spec)
        return (await self._sweeps.CreateSweep(request, metadata=self._metadata)).sweep

    async def get_sweep(self, sweep_id: str) -> sweep_pb2.Sweep:
        request = sweep_pb2.GetSweepRequest(sweep_id=sweep_id)
        return (await self._sweeps.GetSweep(request, metadata=self._metadata)).sweep

    async def list_sweeps(self, page_size: int = 0) -> builtins.list[sweep_pb2.Sweep]:
        request = sweep_pb2.ListSweepsRequest(page_size=page_size)
        response = await self._sweeps.ListSweeps(request, metadata=self._metadata)
        return builtins.list(response.sweeps)

    async def cancel_sweep(self, sweep_id: str) -> sweep_pb2.Sweep:
        request = sweep_pb2.CancelSweepRequest(sweep_id=sweep_id)
        return (await self._sweeps.CancelSweep(request, metadata=self._metadata)).sweep

    def watch_sweep(self, sweep_id: str) -> AsyncIterator[sweep_pb2.Sweep]:
        """The sweep now, then each time it changes, until it ends."""
        request = sweep_pb2.WatchSweepRequest(sweep_id=sweep_id)
        call = self._sweeps.WatchSweep(request, metadata=self._metadata)
        return _stream(call, lambda response: response.sweep)

    async def analyze(self, request: analysis_pb2.AnalyzeRequest) -> analysis_pb2.AnalyzeResponse:
        """Importances, best job and points of a sweep's or a filter's SUCCEEDED jobs."""
        return await self._analysis.Analyze(request, metadata=self._metadata)


async def _stream(
    call: grpc.aio.UnaryStreamCall[Any, Response], pick: Callable[[Response], Item]
) -> AsyncIterator[Item]:
    """What `pick` takes from each response of a stream; cancels the call if its reader stops."""
    try:
        async for response in call:
            yield pick(response)
    finally:
        call.cancel()
