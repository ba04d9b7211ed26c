"""The supervisor: a failed loop resumes, a loop that keeps failing ends the service."""

from __future__ import annotations

import asyncio

import pytest

from tuner.core.supervise import Supervisor, until_either


async def test_a_failing_loop_is_started_again_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopping = asyncio.Event()
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError(f"boom {runs}")
        await stopping.wait()

    supervisor = Supervisor(stopping)
    supervisor.start("the flaky loop", flaky)
    for _ in range(100):
        if runs == 3:
            break
        await asyncio.sleep(0.05)
    assert runs == 3 and supervisor.alive()
    failures = [r for r in caplog.records if "the flaky loop failed" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info for r in failures), "logged with a traceback"
    stopping.set()
    await supervisor.stop(1.0)
    assert not supervisor.dead.is_set()


async def test_a_loop_that_keeps_failing_marks_the_service_dead() -> None:
    stopping = asyncio.Event()

    async def broken() -> None:
        raise RuntimeError("always")

    supervisor = Supervisor(stopping, max_failures=2, window=60.0)
    supervisor.start("the broken loop", broken)
    await asyncio.wait_for(until_either(stopping, supervisor.dead), timeout=10)
    assert supervisor.dead.is_set() and not supervisor.alive()
    assert supervisor.reason == "the broken loop failed 3 times in 60 s"


async def test_a_loop_that_returns_early_counts_as_a_failure() -> None:
    stopping = asyncio.Event()

    async def quits() -> None:
        return

    supervisor = Supervisor(stopping, max_failures=0)
    supervisor.start("the quitter", quits)
    await asyncio.wait_for(supervisor.dead.wait(), timeout=5)


async def test_stop_cancels_a_loop_that_ignores_stopping() -> None:
    stopping = asyncio.Event()

    async def stubborn() -> None:
        await asyncio.sleep(3600)

    supervisor = Supervisor(stopping)
    supervisor.start("the stubborn loop", stubborn)
    stopping.set()
    await asyncio.wait_for(supervisor.stop(0.1), timeout=5)
