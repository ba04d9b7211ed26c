"""The job state machine: nothing moves backwards, nothing ends twice."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

from tuner.core import states
from tuner.core.states import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    allowed,
)
from tuner.v1 import job_pb2

STATES = [QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED]


def test_the_lifecycle_moves_forward() -> None:
    assert allowed(QUEUED, RUNNING)
    assert allowed(RUNNING, SUCCEEDED)
    assert allowed(RUNNING, FAILED)
    assert allowed(QUEUED, CANCELLED)
    assert allowed(RUNNING, CANCELLED)


def test_no_backward_move_and_no_second_ending() -> None:
    for source, target in itertools.product(STATES, STATES):
        if source == SUCCEEDED:
            assert not allowed(source, target), "a success is final"
        if source in TERMINAL and target in TERMINAL:
            assert not allowed(source, target)
        if target == QUEUED:
            assert allowed(source, target) == (source in {FAILED, CANCELLED}), "only as a new run"
    assert not allowed(RUNNING, QUEUED), "a running job never goes back to the queue in place"


def test_only_a_redelivery_repeats_running() -> None:
    assert allowed(RUNNING, RUNNING)
    assert [s for s in STATES if allowed(s, s)] == [RUNNING]


def test_no_other_module_spells_a_state() -> None:
    """Outside states.py (and the generated code) no string is a stored state's name."""
    repo = Path(__file__).resolve().parents[3]
    spelled = {*states.names(states.JOB_STATES), *job_pb2.JobState.keys()}
    found = []
    for package in ("scheduler", "store", "trainer", "tui", "tuner"):
        for path in sorted((repo / package).rglob("*.py")):
            relative = path.relative_to(repo).as_posix()
            if relative.startswith("tuner/v1/") or relative == "tuner/core/states.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), relative)):
                if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                    continue
                if node.value in spelled or node.value.startswith("JOB_STATE_"):
                    found.append(f"{relative}:{node.lineno} {node.value!r}")
    assert found == []
