"""The job state machine: nothing moves backwards, nothing ends twice."""

from __future__ import annotations

import itertools

from tuner.core.states import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    allowed,
)

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
