"""The dashboard's messages, as plain objects: no app, no server."""

from __future__ import annotations

from tests.support.dashboard import job, progress
from tests.support.hyperparameters import mlp
from tui.messages import ProgressReceived
from tuner.v1 import job_pb2

RUNNING = job_pb2.JOB_STATE_RUNNING


def test_progress_replaces_older_progress_of_the_same_job() -> None:
    a, b = job(1, mlp(1), RUNNING), job(2, mlp(2), RUNNING)
    newer = ProgressReceived(progress(3, a, 20, 100, 0.5))
    assert newer.can_replace(ProgressReceived(progress(2, a, 10, 100, 0.6)))
    assert not newer.can_replace(ProgressReceived(progress(1, b, 10, 100, 0.6)))
