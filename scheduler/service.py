"""The TunerService gRPC handlers."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
from nats.js import JetStreamContext

from scheduler.auth import current_user
from scheduler.calls import serialized
from scheduler.fanout import Encoded, EventHub, replay
from scheduler.jobs import Jobs, Refused
from scheduler.leaderboards import Leaderboards
from scheduler.merge import merged
from scheduler.metrics import Metrics
from scheduler.models import FORMATS, CorruptModel, NoModel, read_model, why_no_model
from scheduler.outages import NATS_OUTAGES
from scheduler.retention import RetentionPolicy
from scheduler.status import Status
from scheduler.trainers import Trainers
from scheduler.validation import valid_id, valid_page_size
from store import pages
from store.documents import Document, job_from
from store.jobs import JobStore
from tuner.core import states, streams
from tuner.core.hyperparameters import (
    DATASETS,
    DEFAULT_DATASET,
    MODELS,
    FieldError,
    canonical_key,
    job_id,
    name_of,
    normalized,
)
from tuner.v1 import event_pb2, job_pb2, trainer_pb2, tuner_service_pb2, tuner_service_pb2_grpc

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = grpc.aio.ServicerContext

log = logging.getLogger(__name__)

MAX_LEADERBOARD = 50
DEFAULT_LEADERBOARD = 10


def caller() -> str:
    """The user the auth interceptor identified for this call."""
    return current_user.get()


async def valid_hyperparameters(
    hp: job_pb2.Hyperparameters, context: Context
) -> job_pb2.Hyperparameters:
    try:
        return normalized(hp)
    except FieldError as error:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"hyperparameters.{error}")


def page_token(doc: Document) -> str:
    """Where the next page starts: below the owner's number of the last job on this one."""
    return base64.urlsafe_b64encode(f"below:{doc[pages.FIELD]}".encode()).decode()


NUMBER = re.compile(r"[1-9][0-9]{0,17}")


def parse_page_token(token: str) -> int:
    """Raises ValueError for anything this server did not issue."""
    try:
        tag, number = base64.urlsafe_b64decode(token.encode()).decode().split(":")
    except (binascii.Error, UnicodeError) as error:
        raise ValueError(token) from error
    if tag != "below" or not NUMBER.fullmatch(number):
        raise ValueError(token)
    return int(number)


class TunerService(tuner_service_pb2_grpc.TunerServiceServicer):
    def __init__(
        self,
        store: JobStore,
        jobs: Jobs,
        js: JetStreamContext,
        trainers: Trainers,
        status: Status,
        hub: EventHub | None = None,
        metrics: Metrics | None = None,
        retention: RetentionPolicy | None = None,
    ) -> None:
        self._store = store
        self._leaderboards = Leaderboards(store)
        self._retention = retention or RetentionPolicy()
        self._js = js
        self._jobs = jobs
        self._hub = hub or EventHub(js)
        # Each event's response is made once, then sent as those bytes to all its watchers.
        self._job_frames = Encoded[event_pb2.JobEvent](
            lambda e: tuner_service_pb2.WatchJobResponse(event=e).SerializeToString()
        )
        self._feed_frames = Encoded[event_pb2.JobEvent](
            lambda e: tuner_service_pb2.WatchEventsResponse(event=e).SerializeToString()
        )
        self._metrics = metrics or Metrics()
        self._trainers = trainers
        self._status = status

    async def _get(self, job_id: str, context: Context) -> Document:
        doc = await self._store.get(await valid_id(job_id, "job_id", context))
        if doc is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job_id: no job {job_id} exists")
        return doc

    async def SubmitJob(
        self, request: tuner_service_pb2.SubmitJobRequest, context: Context
    ) -> tuner_service_pb2.SubmitJobResponse:
        user = caller()
        try:
            hp = normalized(request.hyperparameters)
        except FieldError as error:
            self._metrics.refused("invalid")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"hyperparameters.{error}")
        try:
            doc, duplicate = await self._jobs.submit(hp, user)
        except Refused as refused:
            await context.abort(refused.code, str(refused))
        # A prediction, for a job still to train: the trainer goes by the checkpoints it finds.
        reused = 0 if states.of(doc) in states.TERMINAL else doc.get("reused_epochs", 0)
        return tuner_service_pb2.SubmitJobResponse(
            job=job_from(doc),
            deduplicated=duplicate,
            trainers_connected=self._trainers.count(),
            reused_epochs=reused,
        )

    async def GetJob(
        self, request: tuner_service_pb2.GetJobRequest, context: Context
    ) -> tuner_service_pb2.GetJobResponse:
        return tuner_service_pb2.GetJobResponse(
            job=job_from(await self._get(request.job_id, context))
        )

    async def FindJob(
        self, request: tuner_service_pb2.FindJobRequest, context: Context
    ) -> tuner_service_pb2.FindJobResponse:
        hp = await valid_hyperparameters(request.hyperparameters, context)
        doc = await self._store.get(job_id(canonical_key(hp)))
        if doc is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, "hyperparameters: no job has these hyperparameters"
            )
        return tuner_service_pb2.FindJobResponse(job=job_from(doc))

    async def ListJobs(
        self, request: tuner_service_pb2.ListJobsRequest, context: Context
    ) -> tuner_service_pb2.ListJobsResponse:
        user = caller()
        size = await valid_page_size(request.page_size, context)
        for state in request.states:
            if state not in states.JOB_STATES:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"states: unknown job state {state}"
                )
        below = None
        if request.page_token:
            try:
                below = parse_page_token(request.page_token)
            except ValueError:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "page_token: not a token this server issued"
                )
        docs = await self._store.list_owned(user, request.states, size + 1, below)
        response = tuner_service_pb2.ListJobsResponse(jobs=[job_from(d) for d in docs[:size]])
        if len(docs) > size:
            response.next_page_token = page_token(docs[size - 1])
        return response

    async def GetLeaderboard(
        self, request: tuner_service_pb2.GetLeaderboardRequest, context: Context
    ) -> tuner_service_pb2.GetLeaderboardResponse:
        limit = request.limit or DEFAULT_LEADERBOARD
        if not 1 <= limit <= MAX_LEADERBOARD:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"limit: must be between 1 and {MAX_LEADERBOARD}, got {request.limit}",
            )
        dataset, model = DEFAULT_DATASET, ""
        try:
            if request.dataset != job_pb2.DATASET_UNSPECIFIED:
                dataset = name_of(DATASETS, request.dataset)
        except KeyError:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"dataset: unknown dataset {request.dataset}"
            )
        try:
            if request.model != job_pb2.MODEL_UNSPECIFIED:
                model = name_of(MODELS, request.model)
        except KeyError:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"model: unknown model {request.model}"
            )
        jobs = await self._leaderboards.top(limit, dataset, model)
        return tuner_service_pb2.GetLeaderboardResponse(jobs=jobs)

    async def CancelJob(
        self, request: tuner_service_pb2.CancelJobRequest, context: Context
    ) -> tuner_service_pb2.CancelJobResponse:
        user = caller()
        doc = await self._get(request.job_id, context)
        if doc["owner"] != user:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"job_id: job {doc['_id']} belongs to another user",
            )
        try:
            doc = await self._jobs.cancel(doc, f"cancelled by {user}")
        except Refused as refused:
            await context.abort(refused.code, str(refused))
        return tuner_service_pb2.CancelJobResponse(job=job_from(doc))

    async def WatchJob(
        self, request: tuner_service_pb2.WatchJobRequest, context: Context
    ) -> AsyncIterator[tuner_service_pb2.WatchJobResponse]:
        doc = await self._get(request.job_id, context)
        yield tuner_service_pb2.WatchJobResponse(job=job_from(doc))
        ended = states.of(doc) in states.TERMINAL
        subject = streams.events_subject(doc["_id"], doc["run"])
        # After a final snapshot only what is already in the stream remains to be sent.
        events = (
            replay(self._js, subject, request.after_sequence, idle=1.0)
            if ended
            else self._hub.events(subject, request.after_sequence)
        )
        async for event in events:
            yield serialized(self._job_frames(event))
            if event.WhichOneof("kind") == "state_changed" and (
                event.state_changed.job.state in states.TERMINAL
            ):
                return

    async def WatchEvents(
        self, request: tuner_service_pb2.WatchEventsRequest, context: Context
    ) -> AsyncIterator[tuner_service_pb2.WatchEventsResponse]:
        # Without a sequence to resume from, only the events from now on.
        after = request.after_sequence or await self._hub.last_sequence()
        events = _job_events(self._hub.events(streams.EVENTS_SUBJECTS, after), self._feed_frames)
        feed = (
            merged(events, _trainer_changes(self._trainers.watch()))
            if (request.include_trainers)
            else events
        )
        try:
            async for response in feed:
                yield response
        finally:
            await feed.aclose()

    async def ListTrainers(
        self, request: tuner_service_pb2.ListTrainersRequest, context: Context
    ) -> tuner_service_pb2.ListTrainersResponse:
        return tuner_service_pb2.ListTrainersResponse(trainers=self._trainers.live())

    async def GetStatus(
        self, request: tuner_service_pb2.GetStatusRequest, context: Context
    ) -> tuner_service_pb2.GetStatusResponse:
        return await self._status.gather()

    async def GetCaller(
        self, request: tuner_service_pb2.GetCallerRequest, context: Context
    ) -> tuner_service_pb2.GetCallerResponse:
        return tuner_service_pb2.GetCallerResponse(user=caller())

    async def GetModel(
        self, request: tuner_service_pb2.GetModelRequest, context: Context
    ) -> AsyncIterator[tuner_service_pb2.GetModelResponse]:
        # Anyone may download any job's model, as anyone may look any job up (GetJob).
        model_format = request.format or job_pb2.MODEL_FORMAT_STATE_DICT
        if model_format not in FORMATS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"format: unknown model format {request.format}"
            )
        doc = await self._get(request.job_id, context)
        if (why := why_no_model(doc, self._retention)) is not None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, why)
        job = doc["_id"]
        try:
            model = await read_model(self._js, job, FORMATS[model_format])
        except NoModel:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"job_id: the model of job {job} is not stored "
                f"(kept: {self._retention.describe()})",
            )
        except CorruptModel:
            log.error("job %s: the stored %s model does not match its digest", job, model_format)
            await context.abort(
                grpc.StatusCode.DATA_LOSS, f"job_id: the stored model of job {job} is damaged"
            )
        except NATS_OUTAGES as error:
            log.warning("job %s: cannot read its model: %r", job, error)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "NATS unavailable, try again")
        header = tuner_service_pb2.ModelHeader(
            job_id=job, format=model_format, size=len(model.data), sha256=model.sha256
        )
        yield tuner_service_pb2.GetModelResponse(header=header)
        for chunk in model.chunks():
            yield tuner_service_pb2.GetModelResponse(chunk=chunk)


async def _job_events(
    events: AsyncIterator[event_pb2.JobEvent], frames: Encoded[event_pb2.JobEvent]
) -> AsyncGenerator[tuner_service_pb2.WatchEventsResponse, None]:
    try:
        async for event in events:
            yield serialized(frames(event))
    finally:
        if isinstance(events, AsyncGenerator):
            await events.aclose()


async def _trainer_changes(
    updates: AsyncGenerator[trainer_pb2.TrainerChange | trainer_pb2.TrainerSet, None],
) -> AsyncGenerator[tuner_service_pb2.WatchEventsResponse, None]:
    try:
        async for update in updates:
            if isinstance(update, trainer_pb2.TrainerSet):
                yield tuner_service_pb2.WatchEventsResponse(trainer_set=update)
            else:
                yield tuner_service_pb2.WatchEventsResponse(trainer_change=update)
    finally:
        await updates.aclose()
