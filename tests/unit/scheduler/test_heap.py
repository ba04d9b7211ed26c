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
before = gc.get_freeze_count()
settle_heap()
print(json.dumps([before, gc.get_freeze_count(), list(gc.get_threshold()), list(GC_THRESHOLDS)]))
"""


def test_settling_freezes_startups_objects_and_raises_the_thresholds() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    before, frozen, threshold, wanted = json.loads(out.stdout)
    assert before == 0
    # The scheduler's modules, grpc, pymongo and the contracts: tens of thousands of objects.
    assert frozen > 50_000
    assert threshold == wanted
    assert wanted[0] > gc_default_first_threshold()


def gc_default_first_threshold() -> int:
    out = subprocess.run(
        [sys.executable, "-c", "import gc; print(gc.get_threshold()[0])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)
