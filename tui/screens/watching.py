"""A screen that watches one thing over a server stream, again after a lost connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import ClassVar

import grpc
from textual import on
from textual.screen import Screen

from tui import formatting
from tui.messages import Connected, ConnectionLost, RequestFailed
from tuner.core.retry import Backoff

# Watching again would get the same answer.
FINAL_CODES = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)

Follow = Callable[[Callable[[], None]], Awaitable[None]]


class WatchingScreen(Screen[None]):
    """Shows, as a class and in notices, whether the watch is connected."""

    WATCHED: ClassVar[str]  # what is watched, in the notices: "job", "sweep"

    async def keep_watching(self, action: str, follow: Follow) -> None:
        """Runs `follow(connected)` until it returns, again after each failure (1, 2, 4 … s).

        `follow` calls `connected()` whenever the server answers; that resets the waits.
        """
        backoff = Backoff(first=1.0)

        def connected() -> None:
            self.post_message(Connected())
            backoff.reset()

        while True:
            try:
                await follow(connected)
                return
            except grpc.aio.AioRpcError as error:
                if error.code() in FINAL_CODES:
                    self.post_message(RequestFailed.of(action, error))
                    return
                delay = backoff.next()
                self.post_message(ConnectionLost(formatting.reason(error), delay))
                await asyncio.sleep(delay)

    @on(Connected)
    def _connected(self) -> None:
        self.remove_class("-offline")

    @on(ConnectionLost)
    def _lost(self, message: ConnectionLost) -> None:
        if not self.has_class("-offline"):
            self.notify(
                self.retrying(message),
                title="Connection lost",
                severity="warning",
            )
        self.add_class("-offline")

    def retrying(self, message: ConnectionLost) -> str:
        return f"Watching this {self.WATCHED} again in {message.retry_in:g}s ({message.reason})."

    @on(RequestFailed)
    def _failed(self, message: RequestFailed) -> None:
        self.notify(f"{message.action}: {message.details}", title=message.code, severity="error")
