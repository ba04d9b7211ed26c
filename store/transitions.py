"""The job state machine: which state each state may be reached from."""

from __future__ import annotations

from tuner.v1 import job_pb2

QUEUED = job_pb2.JOB_STATE_QUEUED
RUNNING = job_pb2.JOB_STATE_RUNNING
SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
FAILED = job_pb2.JOB_STATE_FAILED
CANCELLED = job_pb2.JOB_STATE_CANCELLED

TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

# RUNNING -> RUNNING is a redelivery to another trainer (a higher attempt);
# FAILED/CANCELLED -> QUEUED is a new run of the same configuration.
SOURCES: dict[int, frozenset[int]] = {
    QUEUED: frozenset({FAILED, CANCELLED}),
    RUNNING: frozenset({QUEUED, RUNNING}),
    SUCCEEDED: frozenset({RUNNING}),
    FAILED: frozenset({QUEUED, RUNNING}),
    CANCELLED: frozenset({QUEUED, RUNNING}),
}


def allowed(source: int, target: int) -> bool:
    return source in SOURCES.get(target, frozenset())


def state_name(state: int) -> str:
    return job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")


def state_value(name: str) -> int:
    return job_pb2.JobState.Value("JOB_STATE_" + name)
