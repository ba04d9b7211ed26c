"""The Textual app: screens over one TunerClient, and `run_tui` for the command line."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterable
from typing import ClassVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from tui.clock import Clock, local_now
from tui.messages import OpenJob
from tui.screens.analysis import AnalysisScreen
from tui.screens.compare import MOST, CompareScreen
from tui.screens.detail import JobDetailScreen
from tui.screens.find import FindScreen
from tui.screens.main import MainScreen
from tui.screens.my_jobs import MyJobsScreen
from tui.screens.sweep_detail import SweepDetailScreen
from tui.screens.sweeps import SweepsScreen
from tui.screens.trainers import TrainersScreen
from tui.widgets.status import ConnectionStatus
from tuner.client import TunerClient
from tuner.v1 import job_pb2


class TunerApp(App[int]):
    """`live=False` starts no calls or streams: tests then feed the screens messages."""

    CSS_PATH = "app.tcss"
    TITLE = "tuner"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "my_jobs", "My jobs"),
        Binding("f3", "find", "Find"),
        Binding("f5", "sweeps", "Sweeps"),
        Binding("f6", "trainers", "Trainers"),
        Binding("f8", "analysis", "Analysis"),
        Binding("f9", "compare", "Compare"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        # Textual would only say how to quit; under `tuner up` Ctrl-C stops the whole stack.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        client: TunerClient,
        *,
        clock: Clock = local_now,
        live: bool = True,
        notices: queue.SimpleQueue[str] | None = None,
    ) -> None:
        """`notices`: lines put from any thread (`tuner up` tells its restarts), shown here."""
        super().__init__()
        self.client = client
        self.clock = clock
        self.live = live
        self._notices = notices
        self.compare: list[job_pb2.Job] = []  # the jobs marked in their detail, in order

    def on_mount(self) -> None:
        if self._notices is not None:
            self.set_interval(0.5, self.show_notices)

    def show_notices(self) -> None:
        """The latest notice goes into the status line; each one, whole, into a toast."""
        assert self._notices is not None
        while True:
            try:
                notice = self._notices.get_nowait()
            except queue.Empty:
                return
            for screen in self.screen_stack:
                for status in screen.query(ConnectionStatus):
                    status.notice(notice.splitlines()[0])
            crashing = "not restarting" in notice
            self.notify(
                notice,
                title="tuner up",
                severity="error" if crashing else "warning",
                timeout=30 if crashing else 10,
            )

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(self.client, self.clock, self.live)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("My jobs", "All your jobs, newest first", self.action_my_jobs)
        yield SystemCommand("Find a job", "Look a job up by its hyperparameters", self.action_find)
        yield SystemCommand(
            "Sweeps", "Your sweeps, their trials and the best so far", self.action_sweeps
        )
        yield SystemCommand("Trainers", "Who trains what, and how far it is", self.action_trainers)
        yield SystemCommand(
            "Analysis",
            "Which hyperparameters matter for accuracy, over a dataset's finished jobs",
            self.action_analysis,
        )
        yield SystemCommand(
            "Compare", "The jobs marked with x in their detail, side by side", self.action_compare
        )
        if isinstance(screen, MainScreen):
            yield SystemCommand(
                "Leaderboard: top 10 / top 50", "Show more or fewer ranks", screen.action_toggle_top
            )
            yield SystemCommand(
                "Leaderboard: next dataset",
                "Each dataset ranks on its own leaderboard",
                screen.action_next_dataset,
            )
        if isinstance(screen, JobDetailScreen) and screen.check_action("cancel_job", ()):
            yield SystemCommand("Cancel this job", "Stop it training", screen.action_cancel_job)
        if isinstance(screen, JobDetailScreen) and screen.check_action("save_model", ()):
            yield SystemCommand(
                "Save this job's model", "Download its weights to a file", screen.action_save_model
            )
        if isinstance(screen, SweepDetailScreen) and screen.check_action("cancel_sweep", ()):
            yield SystemCommand("Cancel this sweep", "Stop its trials", screen.action_cancel_sweep)
        if isinstance(screen, SweepDetailScreen):
            yield SystemCommand(
                "Analyse this sweep", "Importances and charts of its trials", screen.action_analyse
            )
        if isinstance(screen, JobDetailScreen):
            yield SystemCommand(
                "Compare: mark or unmark this job",
                "F9 then shows the marked jobs side by side",
                screen.action_toggle_compare,
            )

    def action_my_jobs(self) -> None:
        if not isinstance(self.screen, MyJobsScreen):
            self.push_screen(MyJobsScreen(self.client, self.clock, self.live))

    def action_find(self) -> None:
        if not isinstance(self.screen, FindScreen):
            self.push_screen(FindScreen(self.client))

    def action_sweeps(self) -> None:
        if not isinstance(self.screen, SweepsScreen):
            self.push_screen(SweepsScreen(self.client, self.clock, self.live))

    def action_trainers(self) -> None:
        if not isinstance(self.screen, TrainersScreen):
            self.push_screen(TrainersScreen(self.client, self.clock, self.live))

    def action_analysis(self) -> None:
        if not isinstance(self.screen, AnalysisScreen):
            main = next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)
            dataset = main.dataset if main is not None else "mnist"
            self.push_screen(AnalysisScreen(self.client, self.live, dataset=dataset))

    def action_compare(self) -> None:
        if isinstance(self.screen, CompareScreen):
            return
        if len(self.compare) < 2:
            self.notify(
                f"Mark 2 to {MOST} jobs first: x in a job's detail marks it "
                f"({len(self.compare)} marked).",
                title="Compare",
            )
            return
        self.push_screen(CompareScreen(self.client, list(self.compare), self.live))

    def toggle_compare(self, job: job_pb2.Job) -> bool:
        """Marks the job for Compare, or unmarks it; whether it is marked now."""
        ids = [j.id for j in self.compare]
        if job.id in ids:
            del self.compare[ids.index(job.id)]
            marked = False
        elif len(self.compare) >= MOST:
            self.notify(f"Compare holds {MOST} jobs: unmark one first.", severity="warning")
            return False
        else:
            self.compare.append(job)
            marked = True
        then = " · F9 compares them" if len(self.compare) > 1 else ""
        self.notify(
            f"{len(self.compare)} marked{then}",
            title="Marked for compare" if marked else "Unmarked",
        )
        return marked

    @on(OpenJob)
    def open_job(self, message: OpenJob) -> None:
        self.push_screen(JobDetailScreen(self.client, message.job, self.clock, self.live))


def run_tui(
    server: str,
    user: str,
    token: str = "",
    ca_file: str = "",
    *,
    notices: queue.SimpleQueue[str] | None = None,
) -> int:
    """Runs the dashboard against the scheduler at `server` until the user quits."""

    async def main() -> int:
        # The gRPC channel belongs to the event loop it is made in: make it in the app's.
        async with TunerClient(server, user, token, ca_file) as client:
            app = TunerApp(client, notices=notices)
            await app.run_async()
            return app.return_code or 0

    return asyncio.run(main())
