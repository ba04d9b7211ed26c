"""The one retry policy: waits that double from `first` up to `cap`, for every loop that retries."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Backoff:
    first: float = 0.5
    cap: float = 15.0
    _next: float = 0.0

    def next(self) -> float:
        """The wait before the next attempt; each failure doubles it up to the cap."""
        delay = self._next or self.first
        self._next = min(delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = 0.0

    async def wait(self, stopping: asyncio.Event | None = None) -> None:
        """Sleep the next delay, or less if `stopping` is set meanwhile."""
        delay = self.next()
        if stopping is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)


async def retry(
    operation: Callable[[], Awaitable[T]],
    what: str,
    log: logging.Logger,
    *,
    backoff: Backoff,
    attempts: int | None,
    stopping: asyncio.Event | None = None,
) -> T:
    """`operation` until it succeeds: at most `attempts` times (None: no limit), and not
    after `stopping` is set. The last error is raised when it gives up."""
    for attempt in itertools.count(1):
        try:
            return await operation()
        except Exception as error:
            if attempt == attempts or (stopping is not None and stopping.is_set()):
                raise
            log.warning("%s failed, retrying: %r", what, error)
            await backoff.wait(stopping)
    raise AssertionError("unreachable")
