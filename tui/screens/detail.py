"""One job in full: what it trains with, where it is, its epochs; cancel it, save its model."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import grpc
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Label, Static

from tui import formatting
from tui.clock import Clock
from tui.jobs import supersedes
from tui.messages import (
    EventReceived,
    JobSnapshot,
    ProgressReceived,
    RequestFailed,
    event_message,
)
from tui.screens.save_model import SaveModelScreen
from tui.screens.watching import WatchingScreen
from tui.widgets.history import EpochChart, EpochTable
from tui.widgets.job_summary import JobSummary
from tuner.client import TunerClient
from tuner.core import states
from tuner.models import ModelError, save, target
from tuner.v1 import job_pb2

MODEL_FORMAT = "state-dict"  # what torch.load gives back as weights; `tuner model get` has both


class JobDetailScreen(WatchingScreen):
    """Watches its job until it is final, resuming after the last event it saw."""

    WATCHED = "job"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("c", "cancel_job", "Cancel job"),
        Binding("m", "save_model", "Save model"),
        Binding("x", "toggle_compare", "Compare ±"),
    ]

    def __init__(self, client: TunerClient, job: job_pb2.Job, clock: Clock, live: bool) -> None:
        super().__init__()
        self._client = client
        self._clock = clock
        self._live = live
        self.job = job
        self.progress: job_pb2.Progress | None = None
        self.last_sequence = 0

    def compose(self) -> ComposeResult:
        yield Label("", id="detail-title", markup=False)
        with Horizontal(id="detail-top"):
            with VerticalScroll(id="detail-summary"):
                yield JobSummary()
            with Vertical(id="detail-chart"):
                yield EpochChart()
                yield Static("", id="detail-progress", markup=False)
        yield EpochTable(id="detail-history")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail-summary").border_title = "Job"
        self.query_one("#detail-chart").border_title = "Epochs"
        self.query_one("#detail-history").border_title = "History"
        self.show()
        if self._live:
            self.watch_job()

    @property
    def mine(self) -> bool:
        return self.job.owner == self._client.user

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_job":
            return self.mine and self.job.state in states.ACTIVE
        if action == "save_model":
            return self.job.state == job_pb2.JOB_STATE_SUCCEEDED
        return True

    def show(self) -> None:
        job = self.job
        self.query_one("#detail-title", Label).update(
            f"Job {job.id} · {formatting.state(job.state)} · {formatting.full(job.hyperparameters)}"
        )
        self.query_one(JobSummary).show(job, self._clock().tzinfo)
        self.query_one(EpochChart).show(list(job.history))
        self.query_one(EpochTable).show(list(job.history))
        self._show_progress()
        for state in ("queued", "running", "succeeded", "failed", "cancelled"):
            self.set_class(formatting.state(job.state) == state, f"-{state}")
        self.refresh_bindings()

    def _show_progress(self) -> None:
        p = self.progress
        if self.job.state in states.TERMINAL:
            text = formatting.outcome(self.job)
        elif p is not None and self.job.state == job_pb2.JOB_STATE_RUNNING:
            text = (
                f"epoch {p.epoch}/{p.total_epochs} · step {p.step}/{p.total_steps} · "
                f"loss {p.loss:.4f}"
            )
        else:
            text = formatting.state(self.job.state)
        self.query_one("#detail-progress", Static).update(text)

    @work(exclusive=True, group="watch")
    async def watch_job(self) -> None:
        async def follow(connected: Callable[[], None]) -> None:
            async for response in self._client.watch(self.job.id, self.last_sequence):
                if response.WhichOneof("kind") == "job":
                    self.post_message(JobSnapshot(response.job))
                    connected()
                    continue
                self.last_sequence = response.event.sequence
                self.post_message(event_message(response.event))
            # the job is final and every event of it was sent

        await self.keep_watching("watch", follow)

    @work(exclusive=True, group="cancel")
    async def cancel(self) -> None:
        try:
            job = await self._client.cancel(self.job.id)
        except grpc.aio.AioRpcError as error:
            self.post_message(RequestFailed.of("cancel", error))
            return
        self.post_message(JobSnapshot(job))
        self.notify(formatting.full(job.hyperparameters), title="Job cancelled")

    def action_cancel_job(self) -> None:
        if self.mine and self.job.state in states.ACTIVE:
            self.cancel()

    def action_toggle_compare(self) -> None:
        """Marks this job for the app's Compare screen (F9), or unmarks it."""
        toggle = getattr(self.app, "toggle_compare", None)
        if toggle is not None:
            toggle(self.job)

    def action_save_model(self) -> None:
        """Asks where (JOB_ID.pt in the current folder unless told), then downloads."""
        if self.job.state != job_pb2.JOB_STATE_SUCCEEDED:
            return
        default = str(target(None, self.job.id, MODEL_FORMAT))

        def chosen(output: str | None) -> None:
            if output:
                self.save_model(output)

        self.app.push_screen(SaveModelScreen(self.job.id, default), chosen)

    @work(exclusive=True, group="model")
    async def save_model(self, output: str) -> None:
        path = target(output, self.job.id, MODEL_FORMAT)
        stream = self._client.model(self.job.id, job_pb2.MODEL_FORMAT_STATE_DICT)
        try:
            header = await save(stream, path)
        except grpc.aio.AioRpcError as error:
            self.notify(error.details() or "", title="Model not saved", severity="error")
            return
        except ModelError as error:
            self.notify(str(error), title="Model not saved", severity="error")
            return
        self.notify(f"{path.absolute()} ({header.size:,} bytes)", title="Model saved")

    @on(JobSnapshot)
    def _snapshot(self, message: JobSnapshot) -> None:
        if not supersedes(message.job, self.job):
            return
        self.job = message.job
        self.show()

    @on(ProgressReceived)
    def _progress(self, message: ProgressReceived) -> None:
        if message.event.run == self.job.run:
            self.progress = message.event.progress
            self._show_progress()

    @on(EventReceived)
    def _event(self, message: EventReceived) -> None:
        event = message.event
        if event.run != self.job.run:
            return
        kind = event.WhichOneof("kind")
        if kind == "state_changed":
            if supersedes(event.state_changed.job, self.job):
                self.job = event.state_changed.job
                self.show()
        elif kind == "epoch_completed" and all(
            m.epoch != event.epoch_completed.epoch for m in self.job.history
        ):
            self.job.history.append(event.epoch_completed)
            self.show()
