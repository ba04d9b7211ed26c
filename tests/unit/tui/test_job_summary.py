"""The job summary's rows."""

from __future__ import annotations

from tests.support.hyperparameters import mlp
from tui.widgets.job_summary import rows
from tuner.v1 import job_pb2


def test_the_epochs_row_says_how_many_a_shorter_job_trained() -> None:
    job = job_pb2.Job(hyperparameters=mlp(1, epochs=4), state=job_pb2.JOB_STATE_QUEUED)
    assert ("epochs", "4") in rows(job, None)
    job.reused_epochs = 2
    assert ("epochs", "4 · 2 reused") in rows(job, None)
