"""What a set of SUCCEEDED jobs says: its best job, the hyperparameters' importances, and
charts of accuracy against them (a dataset's jobs of every user, or one sweep's trials)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.widgets import Footer, Label, Static

from tui import formatting
from tui.messages import AnalysisLoaded, ConnectionLost
from tui.screens.watching import WatchingScreen
from tui.widgets.analysis_chart import (
    BEST,
    GROUPS,
    LABELS,
    NUMERIC,
    PARALLEL,
    SCATTER,
    AnalysisChart,
)
from tui.widgets.importances import ImportanceBars
from tuner.client import TunerClient
from tuner.core.hyperparameters import DATASETS
from tuner.v1 import analysis_pb2, sweep_pb2


def _next(values: tuple[str, ...], value: str) -> str:
    return values[(values.index(value) + 1) % len(values)]


class AnalysisScreen(WatchingScreen):
    """Asks Analyze once when shown (and on `r`), again after a lost connection."""

    WATCHED = "analysis"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012 (as Screen declares it)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("v", "next_view", "View"),
        Binding("h", "next_field", "Hyperparameter"),
        Binding("o", "next_group", "Colour by"),
        Binding("d", "next_dataset", "Dataset"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(
        self,
        client: TunerClient,
        live: bool,
        *,
        dataset: str = "mnist",
        sweep: sweep_pb2.Sweep | None = None,
    ) -> None:
        """A sweep's trials when `sweep` is given, otherwise `dataset`'s jobs of every user."""
        super().__init__()
        self._client = client
        self._live = live
        self.dataset = dataset
        self.sweep = sweep
        self.views = (SCATTER, PARALLEL, BEST) if sweep else (SCATTER, PARALLEL)
        self.view = SCATTER
        self.field = NUMERIC[0]
        self.by = "optimizer"
        self.response: analysis_pb2.AnalyzeResponse | None = None

    def compose(self) -> ComposeResult:
        yield Label("", id="analysis-title", markup=False)
        yield Static("asking the scheduler…", id="analysis-summary", markup=False)
        with Container(id="analysis-body"):
            yield ImportanceBars("", id="analysis-importances", markup=False)
            yield AnalysisChart(id="analysis-chart")
        yield Static("", id="analysis-empty", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#analysis-importances").border_title = "Importance for accuracy"
        self._title()
        self._show_chart()
        self.action_reload()

    def request(self) -> analysis_pb2.AnalyzeRequest:
        if self.sweep is not None:
            return analysis_pb2.AnalyzeRequest(sweep_id=self.sweep.id)
        return analysis_pb2.AnalyzeRequest(
            filter=analysis_pb2.JobFilter(dataset=DATASETS[self.dataset])
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_dataset":
            return self.sweep is None
        if action in ("next_view", "next_field", "next_group") and not (
            self.response and self.response.count
        ):
            return False  # nothing to chart
        if action == "next_field":
            return self.view == SCATTER
        if action == "next_group":
            return self.view != BEST
        return True

    def action_reload(self) -> None:
        if self._live:
            self.load()

    @work(exclusive=True, group="analyze")
    async def load(self) -> None:
        request = self.request()

        async def follow(connected: Callable[[], None]) -> None:
            response = await self._client.analyze(request)
            connected()
            self.post_message(AnalysisLoaded(response))

        await self.keep_watching("analyze", follow)

    def retrying(self, message: ConnectionLost) -> str:
        return f"Asking for this analysis again in {message.retry_in:g}s ({message.reason})."

    @on(ConnectionLost)
    def _offline_summary(self, message: ConnectionLost) -> None:
        self.query_one("#analysis-summary", Static).update(
            f"the scheduler does not answer ({message.reason}) · asking again in "
            f"{message.retry_in:g}s" + (" · showing what it last said" if self.response else "")
        )

    @on(AnalysisLoaded)
    def show(self, message: AnalysisLoaded) -> None:
        self.response = response = message.response
        self.set_class(not response.count, "-empty")
        if not response.count:
            note = f" ({response.note})" if response.note else ""
            self.query_one("#analysis-summary", Static).update("0 jobs")
            self.query_one("#analysis-empty", Static).update(
                f"No finished job matches this set{note}.\nJobs show here once they have SUCCEEDED."
            )
            return
        best = next((p for p in response.points if p.job_id == response.best_job_id), None)
        latest = " (the latest to end)" if response.truncated else ""
        summary = f"{response.count} jobs{latest} · best {response.best_job_id[:12]} "
        summary += formatting.percent(response.best_test_accuracy)
        if best is not None:
            summary += f" · {formatting.full(best.hyperparameters)}"
        self.query_one("#analysis-summary", Static).update(summary)
        self.query_one(ImportanceBars).show(list(response.importances))
        self._show_chart()

    def _title(self) -> None:
        if self.sweep is not None:
            text = f"Analysis · sweep {self.sweep.spec.name or self.sweep.id[:12]}'s trials"
        else:
            text = f"Analysis · {self.dataset} · SUCCEEDED jobs of every user"
        self.query_one("#analysis-title", Label).update(text)

    def _show_chart(self) -> None:
        points = list(self.response.points) if self.response else []
        chart = self.query_one(AnalysisChart)
        chart.show(points, self.view, self.field, self.by)
        if self.view == SCATTER:
            title = f"Accuracy % by {LABELS[self.field]}"
        elif self.view == PARALLEL:
            title = "Parallel coordinates, a line a job"
        else:
            title = "Best accuracy so far by trial"
        chart.border_title = f"{title} · {chart.legend()}" if points else title
        self.refresh_bindings()

    def action_next_view(self) -> None:
        self.view = _next(self.views, self.view)
        self._show_chart()

    def action_next_field(self) -> None:
        self.field = _next(NUMERIC, self.field)
        self._show_chart()

    def action_next_group(self) -> None:
        self.by = _next(tuple(GROUPS), self.by)
        self._show_chart()

    def action_next_dataset(self) -> None:
        if self.sweep is not None:
            return
        self.dataset = _next(tuple(DATASETS), self.dataset)
        self.response = None
        self._title()
        self.query_one("#analysis-summary", Static).update("asking the scheduler…")
        self.query_one(ImportanceBars).show([])
        self.set_class(False, "-empty")
        self._show_chart()
        self.action_reload()
