"""My sweeps, newest first, refreshed while shown; Enter opens one."""

from __future__ import annotations

from typing import ClassVar

import grpc
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from tui import sweeps
from tui.clock import Clock
from tui.messages import RequestFailed, SweepsLoaded
from tui.screens.sweep_detail import SweepDetailScreen
from tuner.client import TunerClient
from tuner.v1 import sweep_pb2

PAGE = 100
REFRESH_S = 3.0
COLUMNS = ("sweep", "name", "state", "trials", "pruned", "best")
EMPTY = "No sweeps yet. Create one with: tuner sweep create spec.yaml"


def row(sweep: sweep_pb2.Sweep) -> tuple[str, ...]:
    return (
        sweep.id[:12],
        sweeps.name(sweep),
        sweeps.state(sweep),
        sweeps.trials(sweep),
        str(sweeps.pruned(sweep)),
        sweeps.best_accuracy(sweep),
    )


class SweepsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, client: TunerClient, clock: Clock, live: bool) -> None:
        super().__init__()
        self._client = client
        self._clock = clock
        self._live = live
        self.sweeps: dict[str, sweep_pb2.Sweep] = {}

    def compose(self) -> ComposeResult:
        yield Label(f"Sweeps of {self._client.user}", id="sweeps-title", markup=False)
        yield DataTable[str](id="sweeps", cursor_type="row", zebra_stripes=True)
        yield Static(EMPTY, id="sweeps-empty", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.set_class(True, "-empty")
        self.action_reload()
        if self._live:
            self.set_interval(REFRESH_S, self._tick)

    def _tick(self) -> None:
        if self.is_current:
            self.load()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        if self._live:
            self.load()

    @work(exclusive=True, group="list")
    async def load(self) -> None:
        try:
            found = await self._client.list_sweeps(page_size=PAGE)
        except grpc.aio.AioRpcError as error:
            self.post_message(RequestFailed.of("list sweeps", error))
            return
        self.post_message(SweepsLoaded(found))

    @on(SweepsLoaded)
    def show(self, message: SweepsLoaded) -> None:
        table = self.query_one(DataTable)
        key = None
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        ordered = sorted(
            message.sweeps, key=lambda s: (s.create_time.seconds, s.create_time.nanos), reverse=True
        )
        table.clear()
        self.sweeps = {s.id: s for s in ordered}
        for sweep in ordered:
            table.add_row(*row(sweep), key=sweep.id)
        if key in self.sweeps:
            table.move_cursor(row=table.get_row_index(key))
        self.set_class(not ordered, "-empty")
        running = sum(s.state == sweep_pb2.SWEEP_STATE_RUNNING for s in ordered)
        self.query_one("#sweeps-title", Label).update(
            f"Sweeps of {self._client.user}: {len(ordered)} shown, {running} running"
        )

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value in self.sweeps:
            self.app.push_screen(
                SweepDetailScreen(
                    self._client, self.sweeps[event.row_key.value], self._clock, self._live
                )
            )

    @on(RequestFailed)
    def _failed(self, message: RequestFailed) -> None:
        self.notify(f"{message.action}: {message.details}", title=message.code, severity="error")
