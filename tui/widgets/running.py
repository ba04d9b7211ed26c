"""My queued and running jobs, one row each: progress bar, epoch, loss, elapsed, ETA."""

from __future__ import annotations

from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ListItem, ListView, ProgressBar

from tui import formatting
from tui.clock import Clock
from tui.jobs import supersedes
from tui.messages import OpenJob
from tuner.core import states
from tuner.trainer_view import WAITING, waiting_for_trainer
from tuner.v1 import event_pb2, job_pb2

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPINNER_RATE = 8  # frames a second


def row_id(job_id: str) -> str:
    return f"running-{job_id}"


class RunningRow(ListItem):
    """One job; `tick` redraws its clock-driven parts (spinner, elapsed, ETA)."""

    def __init__(self, job: job_pb2.Job, clock: Clock) -> None:
        super().__init__(id=row_id(job.id))
        self.job = job
        self.progress: job_pb2.Progress | None = None
        self._progress_attempt = 0
        self._clock = clock
        self._first_seen = clock()
        self._shown: dict[str, str] = {}
        self._composed = False
        self.trainers: int | None = None  # connected trainers; None: not known

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("", classes="spinner")
            yield Label(formatting.short(self.job.hyperparameters), classes="name")
            yield ProgressBar(total=100, show_eta=False)
            yield Label(WAITING, classes="waiting")
            yield Label("", classes="epoch")
            yield Label("", classes="loss")
            yield Label("", classes="elapsed")
            yield Label("", classes="eta")

    def on_mount(self) -> None:
        self._composed = True
        self.show()

    @property
    def running(self) -> bool:
        return self.job.state == job_pb2.JOB_STATE_RUNNING

    def update_job(self, job: job_pb2.Job) -> None:
        if not supersedes(job, self.job):
            return
        # A new run or attempt starts over. The RUNNING record may come after the first
        # progress of its own attempt: the scheduler announces it once it has recorded it.
        if (
            job.run != self.job.run
            or job.attempts > self._progress_attempt
            or job.state == job_pb2.JOB_STATE_QUEUED
        ):
            self.progress = None
        self.job = job
        self.show()

    def update_progress(self, event: event_pb2.JobEvent) -> None:
        if event.run == self.job.run and event.attempt >= self.job.attempts:
            self.progress = event.progress
            self._progress_attempt = event.attempt
            self.show()

    def epoch_completed(self, event: event_pb2.JobEvent) -> None:
        if event.run == self.job.run and not any(
            m.epoch == event.epoch_completed.epoch for m in self.job.history
        ):
            self.job.history.append(event.epoch_completed)
            self.show()

    @property
    def waiting(self) -> bool:
        """Queued while no trainer is connected: it will not start until one is."""
        return waiting_for_trainer(self.job.state == job_pb2.JOB_STATE_QUEUED, self.trainers)

    def set_trainers(self, count: int | None) -> None:
        if count != self.trainers:
            self.trainers = count
            self.show()

    @property
    def fraction(self) -> float:
        """How much of the whole job is done, 0..1."""
        if self.progress is not None and self.progress.total_steps:
            return self.progress.step / self.progress.total_steps
        epochs = self.job.hyperparameters.epochs
        return len(self.job.history) / epochs if epochs else 0.0

    def _epoch(self) -> str:
        epochs = self.job.hyperparameters.epochs
        if self.progress is not None:
            return f"{self.progress.epoch}/{self.progress.total_epochs or epochs}"
        if self.running:
            return f"{min(len(self.job.history) + 1, epochs)}/{epochs}"
        return f"-/{epochs}"

    def _loss(self) -> str:
        if self.progress is not None:
            return f"{self.progress.loss:.4f}"
        if self.job.history:
            return f"{self.job.history[-1].train_loss:.4f}"
        return "-"

    def _since(self) -> datetime:
        started = formatting.moment(self.job.start_time if self.running else self.job.create_time)
        return started or self._first_seen

    def _put(self, column: str, text: str) -> None:
        """Updates a column's label only when its text changes (ticks come 8 times a second)."""
        if self._shown.get(column) != text:
            self._shown[column] = text
            self.query_one(f".{column}", Label).update(text)

    def show(self) -> None:
        if not self._composed:
            return  # on_mount shows it
        self._put("name", formatting.short(self.job.hyperparameters))
        self.query_one(ProgressBar).update(total=1000, progress=round(self.fraction * 1000))
        self._put("epoch", self._epoch())
        self._put("loss", self._loss())
        self.set_class(self.running, "-running")
        self.set_class(not self.running, "-queued")
        self.set_class(self.waiting, "-waiting")
        self.tick()

    def tick(self) -> None:
        if not self._composed:
            return
        now = self._clock()
        elapsed = (now - self._since()).total_seconds()
        if self.running:
            spinner = SPINNER[int(now.timestamp() * SPINNER_RATE) % len(SPINNER)]
            fraction = self.fraction
            if 0 < fraction < 1:
                eta = f"~{formatting.clock_time(elapsed * (1 - fraction) / fraction)}"
            else:
                eta = "-"
        else:
            spinner, eta = "·", "queued"
        self._put("spinner", spinner)
        self._put("elapsed", formatting.clock_time(elapsed))
        self._put("eta", eta)


class RunningJobs(Vertical):
    """The rows of my active jobs, kept current by the screen's events."""

    DEFAULT_CSS = """
    RunningJobs {
        height: auto;
    }
    RunningJobs > ListView {
        height: auto;
        max-height: 12;
    }
    RunningJobs .columns, RunningRow > Horizontal {
        height: 1;
        padding: 0 1;
    }
    RunningJobs .spinner { width: 2; }
    RunningJobs .name { width: 30; text-wrap: nowrap; text-overflow: ellipsis; }
    RunningJobs ProgressBar, RunningJobs .bar-title { width: 1fr; min-width: 8; margin-left: 1; }
    RunningJobs ProgressBar Bar { width: 1fr; }
    RunningJobs .waiting { display: none; width: 1fr; min-width: 8; margin-left: 1; }
    RunningRow.-waiting ProgressBar { display: none; }
    RunningRow.-waiting .waiting { display: block; }
    RunningJobs .epoch { width: 6; text-align: right; }
    RunningJobs .loss { width: 8; text-align: right; }
    RunningJobs .elapsed { width: 8; text-align: right; }
    RunningJobs .eta { width: 7; text-align: right; }
    RunningJobs > .empty { display: none; padding: 0 1; }
    RunningJobs.-empty > .empty { display: block; }
    RunningJobs.-empty > ListView, RunningJobs.-empty > .columns { display: none; }
    """

    TICK = 1 / SPINNER_RATE

    def __init__(self, clock: Clock, user: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._user = user
        self._rows: dict[str, RunningRow] = {}
        self._trainers: int | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="columns"):
            yield Label("", classes="spinner")
            yield Label("job", classes="name")
            yield Label("progress", classes="bar-title")
            yield Label("epoch", classes="epoch")
            yield Label("loss", classes="loss")
            yield Label("elapsed", classes="elapsed")
            yield Label("eta", classes="eta")
        yield ListView()
        yield Label("No queued or running jobs of yours.", classes="empty")

    def on_mount(self) -> None:
        self.add_class("-empty")
        self.set_interval(self.TICK, self._tick)

    def row(self, job_id: str) -> RunningRow | None:
        return self._rows.get(job_id)

    def upsert(self, job: job_pb2.Job) -> None:
        """Shows the job while it is queued or running; removes it once it is final."""
        row = self._rows.get(job.id)
        if row is not None and not supersedes(job, row.job):
            return
        if job.state not in states.ACTIVE:
            if row is not None:
                del self._rows[job.id]
                row.remove()
        elif row is not None:
            row.update_job(job)
        else:
            row = self._rows[job.id] = RunningRow(job, self._clock)
            row.trainers = self._trainers
            self.query_one(ListView).insert(0, [row])
            self.call_after_refresh(self._highlight_one)
        self.set_class(not self._rows, "-empty")

    def _highlight_one(self) -> None:
        """A list with rows always has one highlighted, so Enter opens something."""
        listing = self.query_one(ListView)
        if listing.index is None and self._rows:
            listing.index = 0

    def replace_mine(self, jobs: list[job_pb2.Job]) -> None:
        """Applies a fresh listing of my active jobs: rows of mine missing from it are gone."""
        listed = {job.id for job in jobs}
        for job_id, row in list(self._rows.items()):
            if row.job.owner == self._user and job_id not in listed:
                del self._rows[job_id]
                row.remove()
        for job in reversed(jobs):  # listed newest first; each new row goes on top
            self.upsert(job)
        self.set_class(not self._rows, "-empty")

    def set_trainers(self, count: int | None) -> None:
        """How many trainers are connected: a queued row says when it waits for one."""
        self._trainers = count
        for row in self._rows.values():
            row.set_trainers(count)

    def progress(self, event: event_pb2.JobEvent) -> None:
        if (row := self._rows.get(event.job_id)) is not None:
            row.update_progress(event)

    def epoch_completed(self, event: event_pb2.JobEvent) -> None:
        if (row := self._rows.get(event.job_id)) is not None:
            row.epoch_completed(event)

    def _tick(self) -> None:
        for row in self._rows.values():
            row.tick()

    @on(ListView.Selected)
    def _selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, RunningRow):
            self.post_message(OpenJob(event.item.job))
