"""Calling a gRPC servicer's handlers in process."""

from __future__ import annotations

from typing import Any


class Context:
    """The handler's context: an abort fails the test with the code and details."""

    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")
