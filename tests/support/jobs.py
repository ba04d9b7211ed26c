"""Following jobs over gRPC: waiting for a state, a watcher's events and their kinds."""

from __future__ import annotations

import asyncio
import time

from tuner.client import TunerClient
from tuner.v1 import event_pb2, job_pb2


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
