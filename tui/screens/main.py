"""The dashboard: submit form, my running jobs, leaderboard and message board, live."""

from __future__ import annotations

import asyncio
from datetime import tzinfo
from typing import ClassVar

import grpc
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer

from tui import board, formatting
from tui.clock import Clock
from tui.messages import (
    ActiveJobsLoaded,
    Connected,
    ConnectionLost,
    EventReceived,
    JobChanged,
    JobSubmitted,
    LeaderboardLoaded,
    ProgressReceived,
    RequestFailed,
    TrainerChanged,
    TrainersLoaded,
    event_message,
)
from tui.screens.my_jobs import MyJobsScreen
from tui.screens.trainers import TrainersScreen
from tui.widgets.form import HyperparameterForm
from tui.widgets.leaderboard import Leaderboard
from tui.widgets.message_board import MessageBoard
from tui.widgets.running import RunningJobs
from tui.widgets.status import ConnectionStatus
from tuner import trainer_view
from tuner.client import TunerClient
from tuner.core import states
from tuner.core.hyperparameters import DATASETS
from tuner.core.retry import Backoff
from tuner.v1 import event_pb2, job_pb2, trainer_pb2

SHORT_TOP = 10
LONG_TOP = 50
LIST_PAGE = 100
# The leaderboards the dashboard shows, one at a time; each dataset has its own.
SHOWN_DATASETS = ("mnist", "fashion-mnist")
REMEMBERED = 1000  # board keys kept; far more than a submit answer can lag behind its event


class MainScreen(Screen[None]):
    """Fed by one events stream; reloads the leaderboard whenever a job succeeds."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (as Screen declares it)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f4,t", "toggle_top", "Top 10/50"),
        Binding("f7,d", "next_dataset", "Dataset", show=False),  # the title says so
        Binding("s", "focus_form", "Form", show=False),
    ]

    def __init__(self, client: TunerClient, clock: Clock, live: bool) -> None:
        super().__init__()
        self._client = client
        self._clock = clock
        self._live = live
        self.user = client.user
        self.top = SHORT_TOP
        self.dataset = SHOWN_DATASETS[0]  # whose leaderboard is shown
        self.last_sequence = 0
        self._lost = False
        # Transitions already on the board (a submit answer and its event say the same).
        self._on_board: dict[tuple[str, int, int, int], None] = {}
        self._following: set[str] = set()  # jobs submitted here that others own
        self.trainers: dict[str, trainer_pb2.TrainerStatus] = {}  # from the feed, by name

    def compose(self) -> ComposeResult:
        yield ConnectionStatus(self._client.server, self.user)
        with VerticalScroll(id="dashboard"), Container(id="columns"):
            with Vertical(id="left"):
                yield HyperparameterForm(id="form")
                yield RunningJobs(self._clock, self.user, id="running")
            with Vertical(id="right"):
                yield Leaderboard(id="leaderboard")
                yield MessageBoard(id="board")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#form").border_title = "New job"
        self.query_one("#running").border_title = "My queued and running jobs"
        self._title_leaderboard()
        self.query_one("#board").border_title = "Messages"
        self.query_one("#epochs").focus()
        if self._live:
            self.follow_events()

    # Workers: each talks to the scheduler and posts what it got.

    @work(exclusive=True, group="events")
    async def follow_events(self) -> None:
        """Loads the snapshot, then follows every event; on failure waits and does it again.

        Resuming after the last sequence seen loses and doubles nothing; the snapshot
        covers what happened before the first event or during an outage. The feed also
        carries the trainers: their set first, then each change.
        """
        backoff = Backoff(first=1.0)
        while True:
            try:
                mine = await self._client.list(sorted(states.ACTIVE), page_size=LIST_PAGE)
                dataset = self.dataset
                top = await self._client.leaderboard(self.top, DATASETS[dataset])
                self.post_message(ActiveJobsLoaded(list(mine.jobs)))
                self.post_message(LeaderboardLoaded(top, dataset))
                self.post_message(Connected())
                backoff.reset()
                async for response in self._client.watch_feed(self.last_sequence):
                    kind = response.WhichOneof("kind")
                    if kind == "event":
                        self.last_sequence = response.event.sequence
                        self.post_message(event_message(response.event))
                    elif kind == "trainer_change":
                        self.post_message(TrainerChanged(response.trainer_change))
                    elif kind == "trainer_set":
                        self.post_message(TrainersLoaded(list(response.trainer_set.trainers)))
                why = "the scheduler ended the stream"
            except grpc.aio.AioRpcError as error:
                why = formatting.reason(error)
            delay = backoff.next()
            self.post_message(ConnectionLost(why, delay))
            await asyncio.sleep(delay)

    @work(exclusive=True, group="leaderboard")
    async def load_leaderboard(self) -> None:
        dataset = self.dataset
        try:
            top = await self._client.leaderboard(self.top, DATASETS[dataset])
            self.post_message(LeaderboardLoaded(top, dataset))
        except grpc.aio.AioRpcError as error:
            self.post_message(RequestFailed.of("leaderboard", error))

    @work(group="submit")
    async def submit(self, hp: job_pb2.Hyperparameters) -> None:
        form = self.query_one(HyperparameterForm)
        form.pending = True
        try:
            self.post_message(JobSubmitted(await self._client.submit(hp)))
        except grpc.aio.AioRpcError as error:
            self.post_message(RequestFailed.of("submit", error))
        finally:
            form.pending = False

    # Handlers: what the workers and widgets post.

    @on(HyperparameterForm.Submitted)
    def _form_submitted(self, message: HyperparameterForm.Submitted) -> None:
        self.submit(message.hyperparameters)

    @on(Connected)
    def _connected(self) -> None:
        self.query_one(ConnectionStatus).online()
        if self._lost:
            self.notify(f"Connected to {self._client.server} again.", title="Reconnected")
        self._lost = False

    @on(ConnectionLost)
    def _connection_lost(self, message: ConnectionLost) -> None:
        self.query_one(ConnectionStatus).offline(message.reason, message.retry_in)
        if not self._lost:
            self.notify(
                f"The scheduler at {self._client.server} does not answer: {message.reason}. "
                "Reconnecting by itself.",
                title="Connection lost",
                severity="error",
            )
        self._lost = True

    @on(TrainersLoaded)
    def _trainers_loaded(self, message: TrainersLoaded) -> None:
        self.trainers = {t.name: t for t in message.trainers}
        self._show_trainers()

    @on(TrainerChanged)
    def _trainer_changed(self, message: TrainerChanged) -> None:
        status = message.change.trainer
        if message.change.kind == trainer_pb2.TRAINER_CHANGE_KIND_LEFT:
            self.trainers.pop(status.name, None)
        else:
            self.trainers[status.name] = status
        self._show_trainers()

    def _show_trainers(self) -> None:
        """The count here, and the whole set to any Trainers screen open above."""
        count = len(self.trainers)
        warming_up = sum(trainer_view.warming_up(t) for t in self.trainers.values())
        self.query_one(ConnectionStatus).trainers(count, warming_up)
        self.query_one(RunningJobs).set_trainers(count)
        for screen in self.app.screen_stack:
            if isinstance(screen, TrainersScreen):
                screen.post_message(TrainersLoaded(list(self.trainers.values())))

    @on(ActiveJobsLoaded)
    def _active_loaded(self, message: ActiveJobsLoaded) -> None:
        self.query_one(RunningJobs).replace_mine(message.jobs)

    @on(LeaderboardLoaded)
    async def _leaderboard_loaded(self, message: LeaderboardLoaded) -> None:
        if message.dataset == self.dataset:  # not one asked for before a switch
            await self.query_one(Leaderboard).show(message.jobs)

    @on(ProgressReceived)
    def _progress(self, message: ProgressReceived) -> None:
        self.query_one(RunningJobs).progress(message.event)

    @on(EventReceived)
    def _event(self, message: EventReceived) -> None:
        event = message.event
        kind = event.WhichOneof("kind")
        if kind == "epoch_completed":
            self.query_one(RunningJobs).epoch_completed(event)
        elif kind == "state_changed":
            self._state_changed(event)

    def _state_changed(self, event: event_pb2.JobEvent) -> None:
        job = event.state_changed.job
        running = self.query_one(RunningJobs)
        mine = job.owner == self.user or job.id in self._following
        if mine or running.row(job.id) is not None:
            running.upsert(job)
        for screen in self.app.screen_stack:
            if isinstance(screen, MyJobsScreen):  # it lists once, then follows this feed
                screen.post_message(JobChanged(job))
        kind, text = board.state_entry(job, self.user)
        self._board(job, kind, text, formatting.time_of_day(event.time, self._zone()))
        if mine and (toast := board.toast(job)) is not None:
            title, text, severity = toast
            self.notify(text, title=title, severity=severity)
        if job.state == job_pb2.JOB_STATE_SUCCEEDED and self._live:
            self.load_leaderboard()

    @on(JobSubmitted)
    def _submitted(self, message: JobSubmitted) -> None:
        job = message.response.job
        now = self._clock().strftime("%H:%M:%S")
        if message.response.deduplicated:
            kind, text = board.existing_entry(job)
            self.query_one(MessageBoard).add(now, kind, text)
        else:
            self._board(job, *board.state_entry(job, self.user), now)
        if job.state in states.ACTIVE:
            if job.owner != self.user:
                self._following.add(job.id)
            self.query_one(RunningJobs).upsert(job)

    @on(RequestFailed)
    def _request_failed(self, message: RequestFailed) -> None:
        if message.action == "submit" and message.code == "INVALID_ARGUMENT":
            self.query_one(HyperparameterForm).show_server_error(message.details)
            return
        self.notify(f"{message.action}: {message.details}", title=message.code, severity="error")

    def _board(self, job: job_pb2.Job, kind: str, text: str, time: str) -> None:
        """Adds the entry unless this transition is on the board already."""
        key = (job.id, job.run, job.attempts, job.state)
        if key not in self._on_board:
            self._on_board[key] = None
            if len(self._on_board) > REMEMBERED:
                del self._on_board[next(iter(self._on_board))]
            self.query_one(MessageBoard).add(time, kind, text)

    def _zone(self) -> tzinfo | None:
        return self._clock().tzinfo

    def _title_leaderboard(self) -> None:
        other = LONG_TOP if self.top == SHORT_TOP else SHORT_TOP
        self.query_one("#leaderboard").border_title = (
            f"Leaderboard · {self.dataset} · top {self.top} "
            f"(f4: top {other}, f7: {_next_dataset(self.dataset)})"
        )

    def action_toggle_top(self) -> None:
        self.top = LONG_TOP if self.top == SHORT_TOP else SHORT_TOP
        self._title_leaderboard()
        if self._live:
            self.load_leaderboard()

    async def action_next_dataset(self) -> None:
        self.dataset = _next_dataset(self.dataset)
        self._title_leaderboard()
        await self.query_one(Leaderboard).show([])  # not the last dataset's ranks meanwhile
        if self._live:
            self.load_leaderboard()

    def action_focus_form(self) -> None:
        self.query_one("#epochs").focus()


def _next_dataset(dataset: str) -> str:
    return SHOWN_DATASETS[(SHOWN_DATASETS.index(dataset) + 1) % len(SHOWN_DATASETS)]
