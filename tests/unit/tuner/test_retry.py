"""The one retry policy: Backoff's doubling waits and retry()'s bounded attempts."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tuner.core.retry import Backoff, retry

log = logging.getLogger(__name__)


def test_backoff_doubles_up_to_its_cap_and_starts_over() -> None:
    backoff = Backoff(first=1, cap=5)
    assert [backoff.next() for _ in range(5)] == [1, 2, 4, 5, 5]
    backoff.reset()
    assert backoff.next() == 1


def test_the_default_backoff_starts_at_half_a_second_and_stops_at_fifteen() -> None:
    backoff = Backoff()
    assert [backoff.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 15, 15, 15]


async def test_a_wait_sleeps_its_delay() -> None:
    backoff = Backoff(first=0.05, cap=1)
    started = time.monotonic()
    await backoff.wait()
    await backoff.wait(asyncio.Event())
    assert time.monotonic() - started >= 0.05 + 0.1 - 0.01


async def test_a_wait_ends_early_when_stopping() -> None:
    backoff = Backoff(first=30, cap=30)
    stopping = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stopping.set)
    started = time.monotonic()
    await backoff.wait(stopping)
    assert time.monotonic() - started < 5
    started = time.monotonic()
    await backoff.wait(stopping)  # already set: no wait at all
    assert time.monotonic() - started < 1


async def test_retry_returns_the_first_success_and_logs_each_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(len(calls) + 1)
        if len(calls) < 3:
            raise ConnectionError(f"down {len(calls)}")
        return "up"

    with caplog.at_level(logging.WARNING, logger=__name__):
        got = await retry(flaky, "connecting", log, backoff=Backoff(first=0.01), attempts=5)
    assert got == "up"
    assert calls == [1, 2, 3]
    assert [r.getMessage() for r in caplog.records] == [
        "connecting failed, retrying: ConnectionError('down 1')",
        "connecting failed, retrying: ConnectionError('down 2')",
    ]


async def test_retry_raises_the_last_error_after_its_attempts() -> None:
    calls: list[int] = []

    async def down() -> None:
        calls.append(len(calls) + 1)
        raise ConnectionError(f"down {len(calls)}")

    with pytest.raises(ConnectionError, match="down 3"):
        await retry(down, "connecting", log, backoff=Backoff(first=0.01), attempts=3)
    assert calls == [1, 2, 3]


async def test_retry_does_not_retry_a_cancellation() -> None:
    calls: list[int] = []

    async def cancelled() -> None:
        calls.append(1)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await retry(cancelled, "connecting", log, backoff=Backoff(first=0.01), attempts=3)
    assert calls == [1]
