"""`python -m benchmarks.baselines.scheduler_made_per_watcher`: each response made per watcher.

For row 3d only: WatchJob, WatchEvents and WatchSweep make and serialize each event's response
once per watcher, as they did before scheduler.fanout.Encoded, to measure making it once for
all of them against.
"""

from __future__ import annotations

import runpy
from typing import Any

from scheduler import fanout


def _made_each_time(self: fanout.Encoded[Any], event: Any) -> bytes:
    return self._encode(event)


fanout.Encoded.__call__ = _made_each_time  # type: ignore[method-assign]
runpy.run_module("scheduler", run_name="__main__", alter_sys=True)
