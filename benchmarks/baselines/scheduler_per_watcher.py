"""`python -m benchmarks.baselines.scheduler_per_watcher`: a consumer of its own per watcher.

For row 3c only: WatchJob and WatchEvents read events as they did before scheduler/fanout.py,
each call through its own JetStream consumer, to measure the shared one against.
"""

from __future__ import annotations

import runpy
from collections.abc import AsyncIterator

from scheduler import fanout
from tuner.v1 import event_pb2


def _own_consumer(
    self: fanout.Hub[event_pb2.JobEvent], subject: str, after_sequence: int
) -> AsyncIterator[event_pb2.JobEvent]:
    return fanout.replay(self._js, subject, after_sequence)


fanout.EventHub.events = _own_consumer  # type: ignore[method-assign]
runpy.run_module("scheduler", run_name="__main__", alter_sys=True)
