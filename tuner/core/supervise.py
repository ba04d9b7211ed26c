"""Every long-lived loop of a service runs here: a failure is logged, the loop resumes with backoff.

A loop that keeps failing (more than `max_failures` within `window` seconds) cannot resume:
the supervisor then sets `dead`, and the service turns NOT_SERVING and exits non-zero so
that whatever runs it (Kubernetes, `tuner up`) starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from tuner.core.retry import Backoff

log = logging.getLogger(__name__)

Loop = Callable[[], Coroutine[Any, Any, None]]


class Supervisor:
    def __init__(
        self, stopping: asyncio.Event, *, max_failures: int = 10, window: float = 60.0
    ) -> None:
        self._stopping = stopping
        self._max_failures = max_failures
        self._window = window
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.dead = asyncio.Event()
        self.reason = ""

    def start(self, name: str, loop: Loop) -> None:
        """Run `loop()` until the service stops; it should return only when `stopping` is set."""
        self._tasks[name] = asyncio.create_task(self._keep(name, loop), name=name)

    def alive(self) -> bool:
        return not self.dead.is_set() and all(not t.done() for t in self._tasks.values())

    async def _keep(self, name: str, loop: Loop) -> None:
        failures: deque[float] = deque()
        backoff = Backoff(first=0.5, cap=10.0)
        while not self._stopping.is_set():
            try:
                await loop()
                if self._stopping.is_set():
                    return
                log.error("%s ended by itself; starting it again", name)
            except Exception:
                log.exception("%s failed; starting it again", name)
            now = time.monotonic()
            failures.append(now)
            while failures and failures[0] < now - self._window:
                failures.popleft()
            if len(failures) > self._max_failures:
                self.reason = f"{name} failed {len(failures)} times in {self._window:g} s"
                log.critical("%s: giving up", self.reason)
                self.dead.set()
                return
            await backoff.wait(self._stopping)

    async def stop(self, grace: float) -> None:
        """Wait up to `grace` seconds for the loops to see `stopping`, then cancel the rest."""
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def until_either(*events: asyncio.Event) -> None:
    """Return as soon as one of the events is set."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
