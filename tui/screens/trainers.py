"""The trainers the scheduler hears from: what each trains and how far it is, kept current
by the main screen from the feed (one ListTrainers when shown, and on `r`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import grpc
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from tui.clock import Clock
from tui.messages import RequestFailed, TrainersLoaded
from tuner import trainer_view
from tuner.client import TunerClient
from tuner.v1 import trainer_pb2

COLUMNS = ("trainer", "device", "state", "job", "progress", "jobs done", "last seen")
EMPTY = (
    "No trainer is connected: queued jobs wait until one starts.\n"
    "Start one with: python -m trainer (or tuner up --trainers N)"
)


def row(trainer: trainer_pb2.TrainerStatus, now: datetime) -> tuple[str, ...]:
    return (
        trainer.name,
        trainer.device,
        trainer_view.state(trainer),
        trainer_view.job(trainer),
        trainer_view.progress(trainer),
        str(trainer.jobs_done),
        trainer_view.last_seen(trainer, now),
    )


class TrainersScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, client: TunerClient, clock: Clock, live: bool) -> None:
        super().__init__()
        self._client = client
        self._clock = clock
        self._live = live
        self.trainers: list[trainer_pb2.TrainerStatus] = []

    def compose(self) -> ComposeResult:
        yield Label("Trainers", id="trainers-title", markup=False)
        yield DataTable[str](id="trainers", cursor_type="row", zebra_stripes=True)
        yield Static(EMPTY, id="trainers-empty", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.set_class(True, "-empty")
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        if self._live:
            self.load()

    @work(exclusive=True, group="trainers")
    async def load(self) -> None:
        try:
            found = await self._client.list_trainers()
        except grpc.aio.AioRpcError as error:
            self.post_message(RequestFailed.of("list trainers", error))
            return
        self.post_message(TrainersLoaded(found))

    @on(TrainersLoaded)
    def show(self, message: TrainersLoaded) -> None:
        table = self.query_one(DataTable)
        key = None
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        now = self._clock().astimezone(UTC)
        table.clear()
        self.trainers = sorted(message.trainers, key=lambda t: t.name)
        for trainer in self.trainers:
            table.add_row(*row(trainer, now), key=trainer.name)
        names = [t.name for t in self.trainers]
        if key in names:
            table.move_cursor(row=names.index(key))
        self.set_class(not self.trainers, "-empty")
        busy = sum(bool(t.job_id) for t in self.trainers)
        warming_up = sum(trainer_view.warming_up(t) for t in self.trainers)
        title = f"Trainers: {len(self.trainers)} connected, {busy} busy"
        self.query_one("#trainers-title", Label).update(
            title + (f", {warming_up} warming up" if warming_up else "")
        )

    @on(RequestFailed)
    def _failed(self, message: RequestFailed) -> None:
        self.notify(f"{message.action}: {message.details}", title=message.code, severity="error")
