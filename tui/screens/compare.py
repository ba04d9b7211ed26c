"""2 to 4 jobs side by side: their hyperparameters and results, and their epochs overlaid."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.widgets import DataTable, Footer, Label

from tui import formatting
from tui.messages import CompareLoaded
from tui.screens.watching import WatchingScreen
from tui.widgets.compare_chart import METRICS, CompareChart, label
from tuner.client import TunerClient
from tuner.v1 import job_pb2

MOST = 4
ROWS: tuple[tuple[str, Callable[[job_pb2.Job], str]], ...] = (
    ("state", lambda j: formatting.state(j.state)),
    (
        "accuracy",
        lambda j: formatting.percent(j.result.test_accuracy) if j.HasField("result") else "-",
    ),
    ("epochs", lambda j: str(j.hyperparameters.epochs)),
    ("learning rate", lambda j: f"{j.hyperparameters.learning_rate:g}"),
    ("batch size", lambda j: str(j.hyperparameters.batch_size)),
    ("dataset", lambda j: formatting.dataset(j.hyperparameters)),
    ("model", lambda j: formatting.model(j.hyperparameters)),
    ("optimizer", lambda j: formatting.optimizer(j.hyperparameters)),
    ("seed", lambda j: str(j.hyperparameters.seed)),
    ("owner", lambda j: j.owner),
)


class CompareScreen(WatchingScreen):
    """Shows the jobs given, then (live) each as the scheduler has it now."""

    WATCHED = "comparison"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("m", "next_metric", "Metric"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, client: TunerClient, jobs: list[job_pb2.Job], live: bool) -> None:
        super().__init__()
        self._client = client
        self._live = live
        self.jobs = jobs[:MOST]
        self.metric = 0

    def compose(self) -> ComposeResult:
        yield Label(f"Compare {len(self.jobs)} jobs", id="compare-title", markup=False)
        yield DataTable[str | Text](id="compare-table", cursor_type="row", zebra_stripes=True)
        yield CompareChart(id="compare-chart")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#compare-table").border_title = "Hyperparameters"
        self.show()
        self.action_reload()

    def action_reload(self) -> None:
        if self._live:
            self.load()

    @work(exclusive=True, group="compare")
    async def load(self) -> None:
        ids = [job.id for job in self.jobs]

        async def follow(connected: Callable[[], None]) -> None:
            found = [await self._client.get(job_id) for job_id in ids]
            connected()
            self.post_message(CompareLoaded(found))

        await self.keep_watching("get jobs", follow)

    @on(CompareLoaded)
    def _loaded(self, message: CompareLoaded) -> None:
        self.jobs = message.jobs[:MOST]
        self.show()

    def show(self) -> None:
        chart = self.query_one(CompareChart)
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column("", key="field")
        for index, job in enumerate(self.jobs):
            colour = chart.series(index)
            style = Style(bold=True)
            if isinstance(colour, tuple):
                style += Style(color=Color(*colour).rich_color)
            table.add_column(Text(label(index, job), style=style), key=job.id)
        for name, cell in ROWS:
            table.add_row(name, *(cell(job) for job in self.jobs), key=name)
        chart.show(self.jobs, self.metric)
        name = METRICS[self.metric][1].capitalize()
        chart.border_title = f"{name} by epoch · colours as the columns above (m: next)"

    def action_next_metric(self) -> None:
        self.metric = (self.metric + 1) % len(METRICS)
        self.show()
