"""A job at a glance: state, owner, attempts, hyperparameters, times, and its result."""

from __future__ import annotations

from datetime import tzinfo

from rich.table import Table
from textual.widgets import Static

from tui import formatting
from tuner.v1 import job_pb2


def rows(job: job_pb2.Job, zone: tzinfo | None) -> list[tuple[str, str]]:
    hp = job.hyperparameters
    found = [
        ("state", formatting.state(job.state)),
        ("owner", job.owner or "-"),
        ("run", f"{job.run} · attempt {job.attempts}"),
        ("trainer", job.trainer or "-"),
        ("model", f"{formatting.model(hp)} · {formatting.optimizer(hp)}"),
        ("dataset", formatting.dataset(hp)),
        (
            "epochs",
            f"{hp.epochs} · {job.reused_epochs} reused" if job.reused_epochs else str(hp.epochs),
        ),
        ("learning rate", f"{hp.learning_rate:g}"),
        ("batch size", str(hp.batch_size)),
        ("seed", str(hp.seed)),
        ("created", formatting.date_time(job.create_time, zone)),
        ("started", formatting.date_time(job.start_time, zone)),
        ("ended", formatting.date_time(job.end_time, zone)),
    ]
    if job.state == job_pb2.JOB_STATE_SUCCEEDED:
        result = job.result
        found += [
            ("accuracy", formatting.percent(result.test_accuracy)),
            ("test loss", f"{result.test_loss:.4f}"),
            ("training", formatting.span(formatting.seconds(result.training_duration))),
            ("evaluation", formatting.span(formatting.seconds(result.evaluation_duration))),
            ("device", result.device or "-"),
        ]
    if job.error:
        found.append(("error", job.error))
    return found


class JobSummary(Static):
    """Redrawn by `show`."""

    DEFAULT_CSS = """
    JobSummary {
        height: auto;
        padding: 0 1;
    }
    """

    def show(self, job: job_pb2.Job, zone: tzinfo | None) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for name, value in rows(job, zone):
            table.add_row(name, value)
        self.update(table)
