"""Job and sweep states: the one vocabulary for their stored names, their sets and the machine.

A state is a proto enum value everywhere in the code; MongoDB stores its short name
('QUEUED' for JOB_STATE_QUEUED), and only this module converts between the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from tuner.v1 import job_pb2, sweep_pb2

QUEUED = job_pb2.JOB_STATE_QUEUED
RUNNING = job_pb2.JOB_STATE_RUNNING
SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
FAILED = job_pb2.JOB_STATE_FAILED
CANCELLED = job_pb2.JOB_STATE_CANCELLED

JOB_STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
ACTIVE = frozenset({QUEUED, RUNNING})
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
# A configuration whose last run ended so may run again; any other state is a duplicate.
RERUNNABLE = frozenset({FAILED, CANCELLED})

# RUNNING -> RUNNING is a redelivery to another trainer (a higher attempt);
# FAILED/CANCELLED -> QUEUED is a new run of the same configuration.
SOURCES: dict[int, frozenset[int]] = {
    QUEUED: RERUNNABLE,
    RUNNING: frozenset({QUEUED, RUNNING}),
    SUCCEEDED: frozenset({RUNNING}),
    FAILED: frozenset({QUEUED, RUNNING}),
    CANCELLED: frozenset({QUEUED, RUNNING}),
}

SWEEP_RUNNING = sweep_pb2.SWEEP_STATE_RUNNING
SWEEP_SUCCEEDED = sweep_pb2.SWEEP_STATE_SUCCEEDED
SWEEP_CANCELLED = sweep_pb2.SWEEP_STATE_CANCELLED


def allowed(source: int, target: int) -> bool:
    return source in SOURCES.get(target, frozenset())


def name(state: int) -> str:
    """'SUCCEEDED' for JOB_STATE_SUCCEEDED: the stored name, also the one people read."""
    return job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")


def names(states: Iterable[int]) -> list[str]:
    return [name(state) for state in states]


def value(stored: str) -> job_pb2.JobState:
    """JOB_STATE_SUCCEEDED for 'SUCCEEDED' (any case); ValueError for an unknown name."""
    return cast("job_pb2.JobState", job_pb2.JobState.Value("JOB_STATE_" + stored.upper()))


def of(doc: dict[str, object]) -> job_pb2.JobState:
    """The state of a stored job or trial."""
    return value(str(doc["state"]))


def sweep_name(state: int) -> str:
    """'RUNNING' for SWEEP_STATE_RUNNING."""
    return sweep_pb2.SweepState.Name(state).removeprefix("SWEEP_STATE_")


def sweep_value(stored: str) -> sweep_pb2.SweepState:
    return cast("sweep_pb2.SweepState", sweep_pb2.SweepState.Value("SWEEP_STATE_" + stored.upper()))


def sweep_of(doc: dict[str, object]) -> sweep_pb2.SweepState:
    return sweep_value(str(doc["state"]))
