"""Two scheduler replicas, active-active, on one NATS and one database, no faults; then one dies.

Jobs go in through both replicas in turn and every job is watched (WatchJob) on each replica.
Each job must be recorded once, epochs 1..E once each, whichever replica took each event, and
both replicas' watchers must see the same events. Then one replica is killed (kill -9, for good)
while jobs run, and the other carries on alone: every job still succeeds, each epoch recorded once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from tests.chaos.harness import SCHEDULERS, SUCCEEDED, Chaos, chaos_seed
from tuner.client import TunerClient
from tuner.v1 import event_pb2, job_pb2

pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.timeout(1200)]

FIRST_JOBS = 20
SECOND_JOBS = 8
LATE_JOBS = 4


@dataclass
class Watched:
    replica: str
    job_id: str
    first: job_pb2.Job | None = None
    events: list[event_pb2.JobEvent] = field(default_factory=list)
    error: str = ""


async def watch(client: TunerClient, replica: str, job_id: str, timeout: float) -> Watched:
    watched = Watched(replica, job_id)

    async def follow() -> None:
        async for response in client.watch(job_id):
            if response.WhichOneof("kind") == "job":
                watched.first = response.job
            else:
                watched.events.append(response.event)

    try:
        await asyncio.wait_for(follow(), timeout)
    except (grpc.aio.AioRpcError, TimeoutError) as error:
        watched.error = repr(error)
    return watched


def watcher_problems(watched: Watched, epochs: int) -> list[str]:
    where = f"{watched.replica} watching {watched.job_id}"
    problems = []
    if watched.error:
        problems.append(f"{where}: {watched.error}")
    if watched.first is None:
        problems.append(f"{where}: no job first")
    sequences = [e.sequence for e in watched.events]
    if sequences != sorted(set(sequences)):
        problems.append(f"{where}: sequences not increasing once each: {sequences}")
    changes = [e.state_changed.job for e in watched.events if e.HasField("state_changed")]
    # A call made once the job was final starts with it so, then replays what the stream holds
    # (its success may be announced later, by the survivor): the first response is its end.
    if watched.first is not None and watched.first.state == SUCCEEDED:
        end: job_pb2.Job | None = watched.first
    else:
        end = changes[-1] if changes else None
    if end is None or end.state != SUCCEEDED:
        states = [job_pb2.JobState.Name(job.state) for job in changes]
        problems.append(f"{where}: states seen {states}, not ending SUCCEEDED")
        return problems
    attempt = end.attempts
    seen = [
        e.epoch_completed.epoch
        for e in watched.events
        if e.HasField("epoch_completed") and e.attempt == attempt
    ]
    if seen != list(range(1, epochs + 1)):
        problems.append(f"{where}: epochs of attempt {attempt} seen {seen}, of {epochs}")
    return problems


async def running(client: TunerClient, ids: list[str]) -> bool:
    states = [(await client.get(j)).state for j in ids]
    return job_pb2.JOB_STATE_RUNNING in states


async def settle_or_fail(chaos: Chaos, what: str) -> float:
    limit = await asyncio.to_thread(chaos.settle_limit, 15.0)
    settled = await chaos.settle(limit)
    if settled is None:
        pytest.fail(
            f"{what}: jobs not final {limit:.0f} s on: {await asyncio.to_thread(chaos.unsettled)}"
            f"\n{chaos.timeline.render()}\n{chaos.log_excerpts()}",
            pytrace=False,
        )
    chaos.timeline.note("settled", detail=f"{what}: in {settled:.1f} s")
    return settled


async def test_two_replicas_record_every_job_once_and_one_can_die(
    tmp_path: Path, data_dir: Path
) -> None:
    chaos = Chaos(tmp_path, data_dir, seed=chaos_seed(), ack_wait=6)
    try:
        await chaos.start()
        began = time.monotonic()
        first = [await chaos.submit_new() for _ in range(FIRST_JOBS)]
        watchers = [
            asyncio.create_task(watch(chaos.client(name), name, jid, timeout=600))
            for jid in first
            for name in SCHEDULERS
        ]
        chaos.timeline.note(
            "submitted", detail=f"{FIRST_JOBS} jobs through both, each watched on both"
        )
        await settle_or_fail(chaos, "two replicas")
        watched = await asyncio.gather(*watchers)
        report = await chaos.check()
        problems = list(report.findings)
        for w in watched:
            problems += watcher_problems(w, chaos.submitted[w.job_id].epochs)
        by_job: dict[str, dict[str, list[int]]] = {}
        for w in watched:
            by_job.setdefault(w.job_id, {})[w.replica] = [e.sequence for e in w.events]
        for jid, seen in by_job.items():
            if len({tuple(s) for s in seen.values()}) != 1:
                problems.append(f"{jid}: the replicas' watchers saw different events: {seen}")
        chaos.timeline.note(
            "checked",
            detail=f"{len(first)} jobs in {time.monotonic() - began:.0f} s, "
            f"{len(watched)} watchers, {len(problems)} problems",
        )

        # One replica dies mid-run, for good; the other takes every event from then on.
        second = [await chaos.submit_new() for _ in range(SECOND_JOBS)]
        deadline = time.monotonic() + 120
        while not await running(chaos.client(SCHEDULERS[0]), second):
            assert time.monotonic() < deadline, "none of the second jobs started"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # in the middle of an epoch, events in flight
        await chaos.kill(SCHEDULERS[1], 0, restart=False)
        survivor = SCHEDULERS[0]
        late = [await chaos.submit_new() for _ in range(LATE_JOBS)]
        watchers = [
            asyncio.create_task(watch(chaos.client(survivor), survivor, jid, timeout=600))
            for jid in second + late
        ]
        await settle_or_fail(chaos, f"{survivor} alone")
        watched = await asyncio.gather(*watchers)
        report = await chaos.check(replicas=[survivor])
        problems += report.findings
        for w in watched:
            problems += watcher_problems(w, chaos.submitted[w.job_id].epochs)
        problems += await chaos.fresh_job()
        chaos.timeline.note(
            "checked",
            detail=f"{len(chaos.submitted)} jobs in {time.monotonic() - began:.0f} s, "
            f"attempts {sorted(set(report.attempts.values()))}",
        )
        problems = list(dict.fromkeys(problems))  # the second check finds the first's again
        if problems:
            pytest.fail(
                f"{len(problems)} problems:\n"
                + "\n".join(f"  - {p}" for p in problems[:80])
                + f"\n\ntimeline:\n{chaos.timeline.render()}\n\nlog excerpts:\n"
                + chaos.log_excerpts(),
                pytrace=False,
            )
    finally:
        await chaos.close()
