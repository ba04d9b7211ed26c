"""A real stack for rows 2-4 (tuner.stack's processes on loopback) and watching jobs on it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from tuner.client import TunerClient
from tuner.core import states
from tuner.stack import LOOPBACK, Stack, free_port, wait_until_serving
from tuner.v1 import event_pb2, job_pb2

USER = "bench"


def mlp(seed: int, epochs: int = 1, batch_size: int = 64) -> job_pb2.Hyperparameters:
    return job_pb2.Hyperparameters(
        epochs=epochs,
        learning_rate=1e-3,
        batch_size=batch_size,
        dataset=job_pb2.DATASET_MNIST,
        model=job_pb2.MODEL_MLP,
        optimizer=job_pb2.OPTIMIZER_ADAM,
        seed=seed,
    )


def seconds(timestamp: Timestamp) -> float:
    """A google.protobuf Timestamp as Unix seconds."""
    return timestamp.ToNanoseconds() / 1e9


def start_scheduler(stack: Stack, module: str) -> str:
    """Stack.start_scheduler, for another module than `scheduler` too."""
    if module == "scheduler":
        return stack.start_scheduler()
    address = f"{LOOPBACK}:{free_port()}"
    stack.env["TUNER_LISTEN"] = address
    process = stack._start("scheduler", [sys.executable, "-m", module])  # its log, its stop
    wait_until_serving(address, process)
    stack.env["TUNER_SERVER"] = address
    return address


@dataclass
class BenchStack:
    """nats-server, SecantusDB (in memory), the scheduler and `trainers` trainers."""

    stack: Stack
    address: str
    trainers: list[str] = field(default_factory=list)
    jobs_trained: int = 0  # by the current trainers; the first job of a trainer loads data

    @classmethod
    def start(
        cls,
        state_dir: Path,
        data_dir: Path,
        trainers: int = 1,
        scheduler: str = "scheduler",
        scheduler_env: dict[str, str] | None = None,
    ) -> BenchStack:
        """`scheduler` is the module run as the scheduler (a baseline's patched one, say);
        `scheduler_env` is set for the scheduler only (TUNER_METRICS_PORT, say)."""
        stack = Stack(state_dir)
        for name in ("TUNER_NATS_URL", "TUNER_MONGO_URI", "TUNER_TORCH_THREADS"):
            stack.env.pop(name, None)
        stack.env.update(TUNER_DATA_DIR=str(data_dir), TUNER_DEVICE="cpu", TUNER_LOG_LEVEL="INFO")
        try:
            stack.start_nats()
            stack.start_mongo(in_memory=True)
            stack.env.update(scheduler_env or {})
            bench = cls(stack, start_scheduler(stack, scheduler))
            for name in scheduler_env or {}:
                stack.env.pop(name)
            if trainers:
                bench.start_trainers(trainers)
        except BaseException:
            stack.stop()
            raise
        return bench

    @property
    def mongo_uri(self) -> str:
        return self.stack.env["TUNER_MONGO_URI"]

    @property
    def nats_url(self) -> str:
        return self.stack.env["TUNER_NATS_URL"]

    def pid(self, name: str) -> int:
        return self.stack.process(name).pid

    def threads_per_trainer(self, count: int) -> int:
        """Trainers sharing the cores split them, as `tuner up --trainers N` does."""
        return max(1, (os.cpu_count() or 1) // count)

    def start_trainers(self, count: int) -> None:
        threads = self.threads_per_trainer(count)
        for index in range(len(self.trainers) + 1, len(self.trainers) + count + 1):
            self.stack.env["TUNER_TORCH_THREADS"] = str(threads)
            self.stack.start_trainer(index)
            self.trainers.append(f"trainer-{index}")
        self.stack.env.pop("TUNER_TORCH_THREADS", None)
        self.jobs_trained = 0

    def stop_trainers(self) -> None:
        for name in self.trainers:
            process = self.stack.process(name)
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        self.trainers.clear()

    def stop(self) -> None:
        self.stack.stop()


@dataclass
class Watched:
    """What one WatchJob call saw: (arrival Unix time, event) in order, until the job ended."""

    job_id: str
    connected_at: float = 0.0  # the first response (the job snapshot) arrived
    events: list[tuple[float, event_pb2.JobEvent]] = field(default_factory=list)

    @property
    def final(self) -> job_pb2.Job | None:
        for _, event in reversed(self.events):
            if event.HasField("state_changed"):
                return event.state_changed.job
        return None

    @property
    def ended_at(self) -> float:
        return self.events[-1][0] if self.events else float("nan")

    def first(self, kind: str) -> tuple[float, event_pb2.JobEvent] | None:
        return next(((t, e) for t, e in self.events if e.WhichOneof("kind") == kind), None)

    def sequences(self) -> list[int]:
        return [e.sequence for _, e in self.events]


async def watch(
    client: TunerClient,
    job_id: str,
    ready: asyncio.Event | None = None,
    into: Watched | None = None,
) -> Watched:
    """Follow a job to its end; `into` keeps what arrived if the task is cancelled midway."""
    watched = Watched(job_id) if into is None else into
    async for response in client.watch(job_id):
        arrived = time.time()
        if response.WhichOneof("kind") == "job":
            watched.connected_at = arrived
            if ready is not None:
                ready.set()
            continue
        event = response.event
        watched.events.append((arrived, event))
        if event.HasField("state_changed") and event.state_changed.job.state in states.TERMINAL:
            break
    return watched


@dataclass
class Run:
    """One job submitted and watched to its end, with client-side times (Unix seconds)."""

    submit_started: float
    submit_ended: float
    watched: Watched

    @property
    def total(self) -> float:
        return self.watched.ended_at - self.submit_started


async def submit_and_watch(client: TunerClient, hp: job_pb2.Hyperparameters) -> Run:
    started = time.time()
    response = await client.submit(hp)
    ended = time.time()
    if response.deduplicated:
        raise RuntimeError(f"job {response.job.id} ran before: use another seed")
    watched = await watch(client, response.job.id)
    final = watched.final
    if final is None or final.state != job_pb2.JOB_STATE_SUCCEEDED:
        raise RuntimeError(f"job {response.job.id} ended as {final}")
    return Run(started, ended, watched)


def trainer_latencies(watched: Watched, after: float = 0.0, kind: str = "") -> list[float]:
    """Seconds from a trainer's publish (event.time) to arrival, for events sent after `after`."""
    out = []
    for arrived, event in watched.events:
        event_kind = event.WhichOneof("kind")
        if event_kind == "state_changed" or (kind and event_kind != kind):
            continue
        sent = seconds(event.time)
        if sent >= after:
            out.append(arrived - sent)
    return out
