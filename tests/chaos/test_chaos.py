"""Chaos: jobs through two scheduler replicas while processes are killed and paused at random.

Faults come every few seconds from a random.Random seeded by TUNER_CHAOS_SEED (a fresh seed
when unset, printed first): kill -9 of a trainer, a scheduler replica, nats-server or SecantusDB,
each started again on the same port and storage, and SIGSTOP/SIGCONT of nats-server or
SecantusDB for 1-8 s. Then everything settles, and every job must have SUCCEEDED exactly once
with each epoch recorded once, nothing left queued or running, both replicas SERVING, and a
fresh job must succeed. TUNER_CHAOS_SECONDS (default 90) and TUNER_CHAOS_SHORT_SECONDS (30) set
how long faults come; `make test-chaos` runs both, `PYTEST_ARGS="-k short"` the short one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.chaos.harness import Chaos, chaos_seed, env_number

pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.timeout(1500)]

JOB_SECONDS = env_number("TUNER_CHAOS_JOB_SECONDS", 15)  # a job's training, on a busy machine
INITIAL_JOBS = 4


async def run_chaos(state_dir: Path, data_dir: Path, seconds: float) -> None:
    seed = chaos_seed()
    print(f"TUNER_CHAOS_SEED={seed}: {seconds:g} s of faults", flush=True)
    chaos = Chaos(state_dir, data_dir, seed, ack_wait=env_number("TUNER_CHAOS_ACK_WAIT", 6))
    monitor_stopping = asyncio.Event()
    monitor: asyncio.Task[None] | None = None
    try:
        await chaos.start()
        monitor = asyncio.create_task(chaos.watch_processes(monitor_stopping))
        for _ in range(INITIAL_JOBS):
            await chaos.submit_new()
        chaos.timeline.note("submitted", detail=f"{INITIAL_JOBS} jobs; faults begin")

        submitting = asyncio.Event()
        submitter = asyncio.create_task(chaos.keep_busy(submitting))
        try:
            await chaos.inject_faults(seconds)
        finally:
            submitting.set()
            await submitter
        last_fault = chaos.timeline.now()
        limit = await asyncio.to_thread(chaos.settle_limit, JOB_SECONDS)
        chaos.timeline.note(
            "faults over",
            detail=f"{len(chaos.faults)} faults, {len(chaos.submitted)} jobs; settling "
            f"(at most {limit:.0f} s)",
        )
        settled = await chaos.settle(limit)
        chaos.timeline.note(
            "settled" if settled is not None else "NOT SETTLED",
            detail=f"{settled:.1f} s after the last fault" if settled is not None else "",
        )
        report = await chaos.check()
        problems = list(report.findings)
        if settled is None:
            problems.insert(0, f"not settled {limit:.0f} s after the last fault")
        problems += await chaos.fresh_job()
        summary = chaos.summary(report, settled, last_fault)
        print("\n" + summary, flush=True)
        if problems:
            shown = problems[:80]
            pytest.fail(
                f"chaos seed {seed}: {len(problems)} broken invariants "
                f"(replay: TUNER_CHAOS_SEED={seed} make test-chaos)\n"
                + "\n".join(f"  - {p}" for p in shown)
                + ("\n  ..." if len(problems) > len(shown) else "")
                + f"\n\nsummary:\n{summary}\n\ntimeline:\n{chaos.timeline.render()}"
                + f"\n\nlog excerpts:\n{chaos.log_excerpts()}",
                pytrace=False,
            )
    finally:
        monitor_stopping.set()
        if monitor is not None:
            await asyncio.gather(monitor, return_exceptions=True)
        await chaos.close()


async def test_chaos_short(tmp_path: Path, data_dir: Path) -> None:
    await run_chaos(tmp_path, data_dir, env_number("TUNER_CHAOS_SHORT_SECONDS", 30))


async def test_chaos(tmp_path: Path, data_dir: Path) -> None:
    await run_chaos(tmp_path, data_dir, env_number("TUNER_CHAOS_SECONDS", 90))
