"""One sweep: the best so far, accuracy by trial, its trials, and a cancel action."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import grpc
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Label, Static

from tui import sweeps
from tui.clock import Clock
from tui.messages import RequestFailed, SweepSnapshot
from tui.screens.analysis import AnalysisScreen
from tui.screens.watching import WatchingScreen
from tui.widgets.sweep_trials import AccuracyChart, TrialsTable
from tuner.client import TunerClient
from tuner.v1 import sweep_pb2

STATES = ("running", "succeeded", "cancelled")


class SweepDetailScreen(WatchingScreen):
    """Watches its sweep until it ends, watching again after a lost connection."""

    WATCHED = "sweep"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("c", "cancel_sweep", "Cancel sweep"),
        Binding("a", "analyse", "Analysis"),
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
        async def follow(connected: Callable[[], None]) -> None:
            async for sweep in self._client.watch_sweep(self.sweep.id):
                self.post_message(SweepSnapshot(sweep))
                connected()
            # the sweep has ended

        await self.keep_watching("watch sweep", follow)

    def action_analyse(self) -> None:
        self.app.push_screen(AnalysisScreen(self._client, self._live, sweep=self.sweep))

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
