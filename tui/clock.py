"""The dashboard's clock: the wall clock in local time, or a fixed one for snapshots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], datetime]


def local_now() -> datetime:
    """Now, timezone-aware, in the local zone (timestamps on screen use the clock's zone)."""
    return datetime.now().astimezone()


def fixed(moment: datetime) -> Clock:
    """A clock that always says `moment` (must be timezone-aware)."""
    return lambda: moment
