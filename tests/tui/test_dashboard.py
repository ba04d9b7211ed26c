"""The dashboard's behaviour, fed fixed messages: no server, no clock but the test's."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from textual.widgets import Button, DataTable

from tests.support.dashboard import NOW, job, offline_app, progress, state_changed, until
from tests.support.hyperparameters import mlp
from tui.messages import (
    ActiveJobsLoaded,
    Connected,
    ConnectionLost,
    JobSubmitted,
    LeaderboardLoaded,
    RequestFailed,
    event_message,
)
from tui.screens.detail import JobDetailScreen
from tui.screens.find import FindScreen
from tui.screens.main import MainScreen
from tui.screens.my_jobs import MyJobsScreen, PageLoaded
from tui.widgets.form import HyperparameterForm
from tui.widgets.leaderboard import MEDALS, Leaderboard, LeaderboardRow
from tui.widgets.message_board import MessageBoard
from tui.widgets.running import RunningJobs
from tui.widgets.status import ConnectionStatus
from tuner.client import TunerClient
from tuner.v1 import job_pb2, tuner_service_pb2

QUEUED = job_pb2.JOB_STATE_QUEUED
RUNNING = job_pb2.JOB_STATE_RUNNING
SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
FAILED = job_pb2.JOB_STATE_FAILED


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def test_elapsed_ticks_every_second_and_progress_moves_the_row(client: TunerClient) -> None:
    clock = Clock()
    app = offline_app(client, clock)
    async with app.run_test() as pilot:
        running_job = job(1, mlp(3900, epochs=2), RUNNING, started=42)
        app.screen.post_message(ActiveJobsLoaded([running_job]))
        await pilot.pause()
        row = app.screen.query_one(RunningJobs).row(running_job.id)
        assert row is not None

        def cell(name: str) -> str:
            return str(row.query_one(f".{name}").render())

        assert cell("elapsed") == "0:42"
        assert cell("epoch") == "1/2"
        clock.now += timedelta(seconds=1)
        await until(pilot, lambda: cell("elapsed") == "0:43", timeout=2, what="a tick")

        app.screen.post_message(event_message(progress(7, running_job, 469, 1876, 0.3456)))
        await pilot.pause()
        assert row.fraction == 0.25
        assert (cell("epoch"), cell("loss")) == ("1/2", "0.3456")
        assert cell("eta") == "~2:09"  # 43 s for a quarter: three quarters to go

        done = job(1, mlp(3900, epochs=2), SUCCEEDED, accuracy=0.97, training=80)
        app.screen.post_message(event_message(state_changed(8, done, 0)))
        await pilot.pause()
        assert app.screen.query_one(RunningJobs).row(running_job.id) is None


async def test_message_board_keeps_the_last_ten_newest_first(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        for n in range(13):
            queued = job(100 + n, mlp(100 + n), QUEUED, owner="bob")
            app.screen.post_message(event_message(state_changed(n + 1, queued, 60 - n)))
        await pilot.pause()
        entries = app.screen.query_one(MessageBoard).entries
        assert len(entries) == 10
        assert [e.text.split()[1] for e in entries] == ["mlp/adam"] * 10
        assert str(entries[0].render()).startswith("14:29:12 ")  # the newest
        assert "s=112" in entries[0].text and "s=103" in entries[-1].text


async def test_own_submission_is_on_the_board_once(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        mine = job(1, mlp(3901), QUEUED)
        app.screen.post_message(JobSubmitted(tuner_service_pb2.SubmitJobResponse(job=mine)))
        app.screen.post_message(event_message(state_changed(5, mine, 0)))
        await pilot.pause()
        entries = app.screen.query_one(MessageBoard).entries
        assert [e.kind for e in entries] == ["submitted"]
        assert app.screen.query_one(RunningJobs).row(mine.id) is not None


async def test_a_late_submit_answer_does_not_move_the_row_back(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        queued = job(1, mlp(3902), QUEUED, updated=10)
        started = job(1, mlp(3902), RUNNING, started=9, updated=9)
        app.screen.post_message(event_message(state_changed(1, queued, 10)))
        app.screen.post_message(event_message(state_changed(2, started, 9)))
        app.screen.post_message(JobSubmitted(tuner_service_pb2.SubmitJobResponse(job=queued)))
        await pilot.pause()
        row = app.screen.query_one(RunningJobs).row(queued.id)
        assert row is not None and row.running
        assert [e.kind for e in app.screen.query_one(MessageBoard).entries] == [
            "started",
            "submitted",
        ]


async def test_toasts_only_for_my_jobs_and_the_leaderboard_medals(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        theirs = job(1, mlp(1), SUCCEEDED, owner="bob", accuracy=0.9, training=3)
        mine = job(2, mlp(2), FAILED, error="out of memory")
        app.screen.post_message(event_message(state_changed(1, theirs, 2)))
        app.screen.post_message(event_message(state_changed(2, mine, 1)))
        leaders = [job(10 + n, mlp(10 + n), SUCCEEDED, accuracy=0.99 - n / 100) for n in range(5)]
        app.screen.post_message(LeaderboardLoaded(leaders))
        await pilot.pause()
        notes = [(n.title, n.message, n.severity) for n in app._notifications]
        assert notes == [
            ("Job failed", "mlp/adam mnist e=1 lr=0.001 bs=64 s=2\nout of memory", "error")
        ]
        rows = list(app.screen.query_one(Leaderboard).query(LeaderboardRow))
        medals = [[name for name in row.classes if name in MEDALS] for row in rows]
        assert medals == [["gold"], ["silver"], ["bronze"], [], []]


async def test_connection_lost_is_said_once_and_reconnection_too(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        status = app.screen.query_one(ConnectionStatus)
        app.screen.post_message(Connected())
        for delay in (1, 2, 4):
            app.screen.post_message(ConnectionLost("unavailable", delay))
        await pilot.pause()
        assert status.has_class("-offline")
        assert "retrying in 4s" in str(status.render())
        assert [n.title for n in app._notifications] == ["Connection lost"]
        app.screen.post_message(Connected())
        await pilot.pause()
        assert status.is_online
        assert [n.title for n in app._notifications] == ["Connection lost", "Reconnected"]


async def test_server_errors_land_under_their_field(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        details = "hyperparameters.batch_size: must be between 1 and 8192, got 9000"
        app.screen.post_message(RequestFailed("submit", "INVALID_ARGUMENT", details))
        await pilot.pause()
        field = app.screen.query_one("#field-batch_size")
        assert field.has_class("-invalid")
        assert "server: must be between 1 and 8192" in str(field.query_one(".field-error").render())
        app.screen.post_message(RequestFailed("submit", "INVALID_ARGUMENT", "user: too long"))
        await pilot.pause()
        form = app.screen.query_one(HyperparameterForm)
        assert form.has_class("-server-error")
        assert "server: user: too long" in str(form.query_one(".form-error").render())


async def test_enter_outside_the_form_does_not_submit(
    client: TunerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        submitted: list[object] = []
        screen = app.screen
        assert isinstance(screen, MainScreen)
        monkeypatch.setattr(screen, "submit", submitted.append)
        app.screen.post_message(
            LeaderboardLoaded([job(10, mlp(10), SUCCEEDED, accuracy=0.98, training=9)])
        )
        await pilot.pause()
        app.screen.query_one(Leaderboard).query_one("ListView").focus()
        await pilot.press("enter")  # opens the job, does not submit
        await pilot.pause()
        assert isinstance(app.screen, JobDetailScreen)
        assert submitted == []
        await pilot.press("escape")
        app.screen.query_one("#seed").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert len(submitted) == 1


async def test_views_and_commands(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"My jobs", "Find a job", "Leaderboard: top 10 / top 50"} <= set(titles)
        await pilot.press("f2")
        assert isinstance(app.screen, MyJobsScreen)
        await pilot.press("f3")
        assert isinstance(app.screen, FindScreen)
        await pilot.press("escape", "escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"find a job", "enter")
        await until(pilot, lambda: isinstance(app.screen, FindScreen), timeout=5, what="find")


@pytest.mark.parametrize("where", ["the main screen", "a field of the form", "another screen"])
async def test_ctrl_c_quits(client: TunerClient, where: str) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        if where == "a field of the form":
            await pilot.click("#learning_rate")
        elif where == "another screen":
            await pilot.press("f2")
        await pilot.press("ctrl+c")
        await until(pilot, lambda: not app.is_running, timeout=5, what="the app quits")
    assert app.return_code == 0


async def test_cancel_is_offered_only_for_my_active_jobs(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test():
        cases = [
            (job(1, mlp(1), RUNNING), True),
            (job(2, mlp(2), QUEUED), True),
            (job(3, mlp(3), RUNNING, owner="bob"), False),
            (job(4, mlp(4), SUCCEEDED, accuracy=0.9, training=1), False),
        ]
        for shown, expected in cases:
            screen = JobDetailScreen(app.client, shown, app.clock, live=False)
            assert bool(screen.check_action("cancel_job", ())) is expected


async def test_a_job_screen_says_when_its_watch_is_lost_and_back(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        # Live: it watches the job at an address where nothing listens.
        screen = JobDetailScreen(app.client, job(1, mlp(1), RUNNING), app.clock, live=True)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.has_class("-offline"), timeout=5, what="offline")
        lost = [n.message for n in app._notifications if n.title == "Connection lost"]
        assert len(lost) == 1 and lost[0].startswith("Watching this job again in 1s (")

        # Its next try would fail again and race the message below.
        screen.workers.cancel_node(screen)
        await pilot.pause()
        screen.post_message(Connected())
        await pilot.pause()
        assert not screen.has_class("-offline")
        screen.post_message(RequestFailed("watch", "NOT_FOUND", "job_id: no job 1 exists"))
        await pilot.pause()
        failed = [(n.title, n.message) for n in app._notifications if n.severity == "error"]
        assert failed == [("NOT_FOUND", "watch: job_id: no job 1 exists")]


async def test_enter_on_submit_submits_the_next_job_too(
    client: TunerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[job_pb2.Hyperparameters] = []

    async def submit(hp: job_pb2.Hyperparameters) -> tuner_service_pb2.SubmitJobResponse:
        await asyncio.sleep(0.05)  # the button is disabled meanwhile
        sent.append(hp)
        return tuner_service_pb2.SubmitJobResponse(job=job(40 + len(sent), hp, QUEUED))

    monkeypatch.setattr(client, "submit", submit)
    app = offline_app(client)
    async with app.run_test() as pilot:
        form = app.screen.query_one(HyperparameterForm)
        button = form.query_one("#submit", Button)
        button.focus()
        await pilot.press("enter")
        await until(pilot, lambda: len(sent) == 1 and not form.pending, timeout=5, what="1st")
        await pilot.pause()
        assert app.focused is button, f"the focus is on {app.focused}"
        await pilot.press("enter")
        await until(pilot, lambda: len(sent) == 2 and not form.pending, timeout=5, what="2nd")
        # Moved away by the user while the request was out, the focus stays where they put it.
        await pilot.press("enter", "shift+tab")
        seed = app.focused
        await until(pilot, lambda: len(sent) == 3 and not form.pending, timeout=5, what="3rd")
        await pilot.pause()
        assert app.focused is seed and seed is not button


async def test_my_jobs_follows_the_feed(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        main = app.screen
        running = job(50, mlp(50), RUNNING, started=30)
        other = job(51, mlp(51), QUEUED)
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, MyJobsScreen)
        screen.post_message(PageLoaded([running, other], "", first=True))
        await pilot.pause()
        table = screen.query_one(DataTable)
        assert table.get_cell(running.id, "state") == "running"
        done = job(50, mlp(50), SUCCEEDED, accuracy=0.9731, training=12)
        main.post_message(event_message(state_changed(7, done, 1)))
        await until(pilot, lambda: table.get_cell(running.id, "state") != "running", timeout=5)
        assert table.get_cell(running.id, "state") == "succeeded"
        assert table.get_cell(running.id, "outcome") == "97.31%"
        assert table.get_cell(other.id, "state") == "queued"


async def test_the_leaderboard_shows_one_dataset_at_a_time(
    client: TunerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[int, int]] = []
    fashion = job(60, mlp(60, dataset=job_pb2.DATASET_FASHION_MNIST), SUCCEEDED, accuracy=0.9)

    async def leaderboard(limit: int, dataset: int, model: int = 0) -> list[job_pb2.Job]:
        asked.append((limit, dataset))
        return [fashion]

    monkeypatch.setattr(client, "leaderboard", leaderboard)
    app = offline_app(client)
    async with app.run_test() as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        board = screen.query_one("#leaderboard")
        assert board.border_title == "Leaderboard · mnist · top 10 (f4: top 50, f7: fashion-mnist)"
        screen.post_message(LeaderboardLoaded([job(10, mlp(10), SUCCEEDED, accuracy=0.98)]))
        await pilot.pause()
        assert len(board.query(LeaderboardRow)) == 1
        await pilot.press("f7")
        await pilot.pause()
        assert board.border_title == "Leaderboard · fashion-mnist · top 10 (f4: top 50, f7: mnist)"
        assert len(board.query(LeaderboardRow)) == 0, (
            "not mnist's ranks under fashion-mnist's title"
        )
        # An answer for the dataset shown before the switch is not shown.
        screen.post_message(LeaderboardLoaded([job(11, mlp(11), SUCCEEDED, accuracy=0.97)]))
        await pilot.pause()
        assert len(board.query(LeaderboardRow)) == 0
        screen.load_leaderboard()
        await until(pilot, lambda: len(board.query(LeaderboardRow)) == 1, timeout=5)
        assert asked == [(10, job_pb2.DATASET_FASHION_MNIST)]
        assert board.query_one(LeaderboardRow).job.id == fashion.id
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Leaderboard: next dataset" in titles
        await pilot.press("f7")
        assert screen.dataset == "mnist"
