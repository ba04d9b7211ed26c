"""Small helpers for tests that drive a running stack over gRPC."""

from __future__ import annotations

import asyncio
import time

from tuner.client import TunerClient
from tuner.v1 import event_pb2, job_pb2


def mlp(seed: int = 0, **fields: object) -> job_pb2.Hyperparameters:
    base: dict[str, object] = {
        "epochs": 1,
        "learning_rate": 0.001,
        "batch_size": 64,
        "model": job_pb2.MODEL_MLP,
        "optimizer": job_pb2.OPTIMIZER_ADAM,
        "seed": seed,
    }
    base.update(fields)
    return job_pb2.Hyperparameters(**base)  # type: ignore[arg-type]


def cnn(seed: int) -> job_pb2.Hyperparameters:
    return mlp(seed, model=job_pb2.MODEL_CNN, batch_size=32)


async def wait_for(
    client: TunerClient, job_id: str, *states: int, timeout: float = 300
) -> job_pb2.Job:
    deadline = time.monotonic() + timeout
    while True:
        job = await client.get(job_id)
        if job.state in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.state} after {timeout} s")
        await asyncio.sleep(0.2)


async def history(client: TunerClient, job_id: str, after: int = 0) -> list[event_pb2.JobEvent]:
    """Every event a watcher gets, until the job ends."""
    events = []
    async for response in client.watch(job_id, after):
        if response.WhichOneof("kind") == "event":
            events.append(response.event)
    return events


def kinds(events: list[event_pb2.JobEvent]) -> list[str]:
    out = []
    for e in events:
        kind = e.WhichOneof("kind") or ""
        if kind == "state_changed":
            kind = job_pb2.JobState.Name(e.state_changed.job.state)
        out.append(kind)
    return out
