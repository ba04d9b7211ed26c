"""Waits between reconnection attempts: 1, 2, 4 … seconds, capped."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    first: float = 1.0
    cap: float = 15.0
    _next: float = 0.0

    def next(self) -> float:
        """The wait before the next attempt; each failure doubles it up to the cap."""
        delay = self._next or self.first
        self._next = min(delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = 0.0
