"""All my jobs, newest first, a page at a time; Enter opens one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import ClassVar

import grpc
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label

from tui import formatting
from tui.clock import Clock
from tui.messages import JobChanged, OpenJob, RequestFailed
from tuner.client import TunerClient
from tuner.v1 import job_pb2

PAGE = 50
COLUMNS = ("job", "state", "configuration", "outcome", "created")


@dataclass
class PageLoaded(Message):
    jobs: list[job_pb2.Job]
    next_page_token: str
    first: bool


class MyJobsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "reload", "Reload"),
        Binding("n", "more", "More"),
    ]

    def __init__(self, client: TunerClient, clock: Clock, live: bool) -> None:
        super().__init__()
        self._client = client
        self._clock = clock
        self._live = live
        self._jobs: dict[str, job_pb2.Job] = {}
        self._next = ""

    def compose(self) -> ComposeResult:
        yield Label(f"Jobs of {self._client.user}", id="my-jobs-title", markup=False)
        yield DataTable[str](id="my-jobs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.action_reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "more":
            return bool(self._next)
        return True

    def action_reload(self) -> None:
        if self._live:
            self.load("")

    def action_more(self) -> None:
        if self._next and self._live:
            self.load(self._next)

    @work(exclusive=True, group="list")
    async def load(self, token: str) -> None:
        try:
            page = await self._client.list(page_size=PAGE, page_token=token)
        except grpc.aio.AioRpcError as error:
            self.post_message(RequestFailed.of("list", error))
            return
        self.post_message(PageLoaded(list(page.jobs), page.next_page_token, not token))

    @on(PageLoaded)
    def show(self, message: PageLoaded) -> None:
        table = self.query_one(DataTable)
        if message.first:
            table.clear()
            self._jobs.clear()
        zone = self._clock().tzinfo
        for job in message.jobs:
            if job.id in self._jobs:
                continue
            self._jobs[job.id] = job
            table.add_row(*cells(job, zone), key=job.id)
        self._next = message.next_page_token
        more = " · n: more" if self._next else ""
        self.query_one("#my-jobs-title", Label).update(
            f"Jobs of {self._client.user}: {len(self._jobs)} shown{more}"
        )
        self.refresh_bindings()

    @on(JobChanged)
    def _changed(self, message: JobChanged) -> None:
        """A job shown here changed state (the main screen forwards the feed): its row says so."""
        job = message.job
        if job.id not in self._jobs:
            return
        self._jobs[job.id] = job
        table = self.query_one(DataTable)
        for column, value in zip(COLUMNS, cells(job, self._clock().tzinfo), strict=True):
            table.update_cell(job.id, column, value)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value in self._jobs:
            self.post_message(OpenJob(self._jobs[event.row_key.value]))

    @on(RequestFailed)
    def _failed(self, message: RequestFailed) -> None:
        self.notify(f"{message.action}: {message.details}", title=message.code, severity="error")


def cells(job: job_pb2.Job, zone: tzinfo | None) -> tuple[str, ...]:
    """A job's row, in COLUMNS order."""
    succeeded = job.state == job_pb2.JOB_STATE_SUCCEEDED
    return (
        job.id[:12],
        formatting.state(job.state),
        formatting.full(job.hyperparameters),
        formatting.percent(job.result.test_accuracy) if succeeded else formatting.outcome(job),
        formatting.date_time(job.create_time, zone),
    )
