"""The scheduler's heap, settled once it serves: what startup made is frozen out of the
collector's walks, and the youngest objects are collected less often."""

from __future__ import annotations

import json
import subprocess
import sys

# In a process of its own: freezing the test process's heap would outlive the test.
PROBE = """
import gc, json
from scheduler.main import GC_THRESHOLDS, settle_heap
before, default = gc.get_freeze_count(), gc.get_threshold()
settle_heap()
print(json.dumps([before, gc.get_freeze_count(), default, gc.get_threshold(), GC_THRESHOLDS]))
"""


def test_settling_freezes_startups_objects_and_raises_the_thresholds() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    before, frozen, default, threshold, wanted = json.loads(out.stdout)
    assert before == 0
    # The scheduler's modules, grpc, pymongo and the contracts: tens of thousands of objects.
    assert frozen > 50_000
    assert threshold == wanted
    assert wanted[0] > default[0]
