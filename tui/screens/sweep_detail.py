"""One sweep: the best so far, accuracy by trial, its trials, and a cancel action."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import grpc
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from tui import formatting, sweeps
from tui.backoff import Backoff
from tui.clock import Clock
from tui.messages import Connected, ConnectionLost, RequestFailed, SweepSnapshot
from tui.widgets.sweep_trials import AccuracyChart, TrialsTable
from tuner.client import TunerClient
from tuner.v1 import sweep_pb2

FINAL_CODES = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
STATES = ("running", "succeeded", "cancelled")


class SweepDetailScreen(Screen[None]):
    """Watches its sweep until it ends, watching again after a lost connection."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("c", "cancel_sweep", "Cancel sweep"),
    ]

    def __init__(
        self, client: TunerClient, sweep: sweep_pb2.Sweep, clock: Clock, live: bool
    ) -> None:
        super().__init__()
        self._client = client
        self._clock = clock
        self._live = live
        self.sweep = sweep

    def compose(self) -> ComposeResult:
        yield Label("", id="sweep-title", markup=False)
        yield Static("", id="sweep-best", markup=False)
        yield AccuracyChart(id="sweep-chart")
        yield TrialsTable(id="sweep-trials")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sweep-trials").border_title = "Trials"
        self.query_one("#sweep-chart").border_title = "Accuracy % by trial · ◆ best · x pruned"
        self.show()
        if self._live:
            self.watch_sweep()

    @property
    def mine(self) -> bool:
        return self.sweep.owner == self._client.user

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_sweep":
            return self.mine and self.sweep.state == sweep_pb2.SWEEP_STATE_RUNNING
        return True

    def show(self) -> None:
        sweep = self.sweep
        self.query_one("#sweep-title", Label).update(
            f"Sweep {sweep.id[:12]} · {sweeps.name(sweep)} · {sweeps.state(sweep)} · "
            f"{sweeps.trials(sweep)} trials, {sweeps.pruned(sweep)} pruned"
        )
        self.query_one("#sweep-best", Static).update(sweeps.best_line(sweep))
        self.query_one(AccuracyChart).show(sweep)
        self.query_one(TrialsTable).show(sweep)
        for name in STATES:
            self.set_class(sweeps.state(sweep) == name, f"-{name}")
        self.refresh_bindings()

    @work(exclusive=True, group="watch")
    async def watch_sweep(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async for sweep in self._client.watch_sweep(self.sweep.id):
                    self.post_message(SweepSnapshot(sweep))
                    self.post_message(Connected())
                    backoff.reset()
                return  # the sweep has ended
            except grpc.aio.AioRpcError as error:
                if error.code() in FINAL_CODES:
                    self.post_message(RequestFailed.of("watch sweep", error))
                    return
                delay = backoff.next()
                self.post_message(ConnectionLost(formatting.reason(error), delay))
                await asyncio.sleep(delay)

    @work(exclusive=True, group="cancel")
    async def cancel(self) -> None:
        try:
            sweep = await self._client.cancel_sweep(self.sweep.id)
        except grpc.aio.AioRpcError as error:
            self.post_message(RequestFailed.of("cancel sweep", error))
            return
        self.post_message(SweepSnapshot(sweep))
        self.notify(sweeps.name(sweep), title="Sweep cancelled")

    def action_cancel_sweep(self) -> None:
        if self.check_action("cancel_sweep", ()):
            self.cancel()

    @on(SweepSnapshot)
    def _snapshot(self, message: SweepSnapshot) -> None:
        if message.sweep.id != self.sweep.id or not sweeps.newer(message.sweep, self.sweep):
            return
        self.sweep = message.sweep
        self.show()

    @on(Connected)
    def _connected(self) -> None:
        self.remove_class("-offline")

    @on(ConnectionLost)
    def _lost(self, message: ConnectionLost) -> None:
        if not self.has_class("-offline"):
            self.notify(
                f"Watching this sweep again in {message.retry_in:g}s ({message.reason}).",
                title="Connection lost",
                severity="warning",
            )
        self.add_class("-offline")

    @on(RequestFailed)
    def _failed(self, message: RequestFailed) -> None:
        self.notify(f"{message.action}: {message.details}", title=message.code, severity="error")
