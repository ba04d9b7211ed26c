"""`python -m benchmarks.proposals.scheduler_with_hub`: the scheduler, its WatchJob on EventHub.

For the bench only (row 3c): it patches TunerService so that the watchers of a live job share
one consumer, then runs `python -m scheduler` as it is. Not to be moved into scheduler/.
"""

from __future__ import annotations

import runpy
from collections.abc import AsyncIterator
from typing import Any

from benchmarks.proposals.fanout import EventHub
from scheduler.service import TunerService
from tuner import streams
from tuner.v1 import event_pb2

_events = TunerService._events


def _shared_events(
    self: Any, subject: str, after_sequence: int, idle: float | None = None, new_only: bool = False
) -> AsyncIterator[event_pb2.JobEvent]:
    if idle is not None or new_only or subject == streams.EVENTS_SUBJECTS:
        replay: AsyncIterator[event_pb2.JobEvent] = _events(
            self, subject, after_sequence, idle, new_only
        )
        return replay
    hub: EventHub = self.__dict__.setdefault("_hub", EventHub(self._js))
    return hub.events(subject, after_sequence)


TunerService._events = _shared_events  # type: ignore[method-assign]
runpy.run_module("scheduler", run_name="__main__", alter_sys=True)
