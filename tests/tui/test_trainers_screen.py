"""The Trainers screen, the trainer count in the status line, and queued rows that wait."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import DataTable, Label, Static

from tests.support.dashboard import at, job, offline_app, still, until
from tests.support.hyperparameters import mlp
from tests.support.stack import RunningStack
from tui.app import TunerApp
from tui.messages import ActiveJobsLoaded, Connected, TrainerChanged, TrainersLoaded
from tui.screens.trainers import EMPTY, TrainersScreen
from tui.widgets.running import RunningJobs
from tui.widgets.status import ConnectionStatus
from tuner.client import TunerClient
from tuner.v1 import job_pb2, trainer_pb2

SnapCompare = Callable[..., bool]
QUEUED = job_pb2.JOB_STATE_QUEUED
RUNNING = job_pb2.JOB_STATE_RUNNING
JOB = "089a9b11898428570378e1ecca05b40a"


def trainers() -> list[trainer_pb2.TrainerStatus]:
    busy = trainer_pb2.TrainerStatus(
        name="trainer-1",
        host="gpu-box",
        device="cuda:0",
        torch_threads=8,
        job_id=JOB,
        run=1,
        jobs_done=4,
        progress=job_pb2.Progress(epoch=2, total_epochs=3, step=1200, total_steps=2814),
        ready=True,
    )
    busy.receive_time.CopyFrom(at(0.8))
    idle = trainer_pb2.TrainerStatus(
        name="trainer-2", host="cpu-box", device="cpu", jobs_done=1, ready=True
    )
    idle.receive_time.CopyFrom(at(1.5))
    return [idle, busy]


def warming() -> trainer_pb2.TrainerStatus:
    """Just started: loading its data, not taking jobs yet."""
    status = trainer_pb2.TrainerStatus(name="trainer-3", host="cpu-box", device="cpu")
    status.receive_time.CopyFrom(at(0.2))
    return status


def rows(table: DataTable[str]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_f6_and_the_palette_open_the_trainers(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        assert "Trainers" in [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("f6")
        assert isinstance(app.screen, TrainersScreen)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"trainers", "enter")
        await until(pilot, lambda: isinstance(app.screen, TrainersScreen), timeout=5)


async def test_the_screen_lists_each_trainer_and_says_when_there_is_none(
    client: TunerClient,
) -> None:
    app = offline_app(client)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("f6")
        screen = app.screen
        assert isinstance(screen, TrainersScreen)
        empty = screen.query_one("#trainers-empty", Static)
        assert empty.display and "queued jobs wait" in EMPTY

        screen.post_message(TrainersLoaded(trainers()))
        await pilot.pause()
        assert not empty.display
        assert rows(screen.query_one(DataTable)) == [
            [
                "trainer-1",
                "cuda:0",
                "busy",
                "089a9b118984 run 1",
                "epoch 2/3 · step 1200/2814 (43%)",
                "4",
                "0.8 s ago",
            ],
            ["trainer-2", "cpu", "idle", "-", "-", "1", "1.5 s ago"],
        ]
        title = str(screen.query_one("#trainers-title", Label).render())
        assert title == "Trainers: 2 connected, 1 busy"

        screen.post_message(TrainersLoaded([*trainers(), warming()]))
        await pilot.pause()
        assert rows(screen.query_one(DataTable))[2] == [
            "trainer-3", "cpu", "warming up", "-", "-", "0", "0.2 s ago",
        ]  # fmt: skip
        title = str(screen.query_one("#trainers-title", Label).render())
        assert title == "Trainers: 3 connected, 1 busy, 1 warming up"

        screen.post_message(TrainersLoaded([]))
        await pilot.pause()
        assert empty.display


async def test_the_status_line_counts_trainers_and_a_queued_row_waits_for_one(
    client: TunerClient,
) -> None:
    app = offline_app(client)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        queued = job(31, mlp(31), QUEUED)
        running = job(32, mlp(32), RUNNING, started=60)
        screen.post_message(Connected())
        screen.post_message(ActiveJobsLoaded([queued, running]))
        await pilot.pause()
        status = screen.query_one(ConnectionStatus)
        rows_ = screen.query_one(RunningJobs)
        queued_row, running_row = rows_.row(queued.id), rows_.row(running.id)
        assert queued_row is not None and running_row is not None
        assert not queued_row.has_class("-waiting"), "unknown is not zero"

        screen.post_message(TrainersLoaded([]))
        await pilot.pause()
        assert "no trainer connected" in str(status.render())
        assert status.has_class("-no-trainers")
        assert queued_row.has_class("-waiting") and not running_row.has_class("-waiting")
        assert queued_row.query_one(".waiting", Label).display

        screen.post_message(TrainersLoaded(trainers()))
        await pilot.pause()
        assert "trainers 2 ready" in str(status.render())
        assert not queued_row.has_class("-waiting")
        screen.post_message(TrainersLoaded([*trainers(), warming()]))
        await pilot.pause()
        assert "trainers 3 (1 warming up)" in str(status.render())
        assert "ready" not in str(status.render())
        # A row that arrives while none is connected waits from the start.
        screen.post_message(TrainersLoaded([]))
        later = job(33, mlp(33), QUEUED)
        screen.post_message(ActiveJobsLoaded([later, queued, running]))
        await pilot.pause()
        later_row = rows_.row(later.id)
        assert later_row is not None and later_row.has_class("-waiting")


def test_trainers_screen(snap_compare: SnapCompare, offline_client: TunerClient) -> None:
    async def run_before(pilot: Pilot[object]) -> None:
        app = pilot.app
        assert isinstance(app, TunerApp)
        screen = TrainersScreen(offline_client, app.clock, live=False)
        await app.push_screen(screen)
        screen.post_message(TrainersLoaded(trainers()))
        await pilot.pause()
        still(pilot)
        await pilot.pause()

    assert snap_compare(offline_app(offline_client), terminal_size=(110, 14), run_before=run_before)


async def test_live_the_trainers_screen_shows_the_stack_trainer(
    running_stack: RunningStack,
) -> None:
    async with TunerClient(running_stack.address, "tui-trainers") as client:
        app = TunerApp(client)
        async with app.run_test(size=(120, 30)) as pilot:
            status = app.screen.query_one(ConnectionStatus)
            await until(pilot, lambda: "trainers 1 ready" in str(status.render()), timeout=90)
            await pilot.press("f6")
            screen = app.screen
            assert isinstance(screen, TrainersScreen)
            table = screen.query_one(DataTable)
            await until(pilot, lambda: table.row_count == 1, timeout=10)
            assert rows(table)[0][:2] == ["trainer-1", "cpu"]


async def test_trainer_changes_from_the_feed_keep_the_count(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        screen.post_message(Connected())
        screen.post_message(TrainersLoaded([]))
        await pilot.pause()
        status = screen.query_one(ConnectionStatus)
        assert "no trainer connected" in str(status.render())
        idle, busy = trainers()
        cold = trainer_pb2.TrainerStatus()
        cold.CopyFrom(idle)
        cold.ready = False
        for kind, trainer, expected in [
            (trainer_pb2.TRAINER_CHANGE_KIND_APPEARED, cold, "trainers 1 (1 warming up)"),
            (trainer_pb2.TRAINER_CHANGE_KIND_CHANGED, idle, "trainers 1 ready"),
            (trainer_pb2.TRAINER_CHANGE_KIND_APPEARED, busy, "trainers 2 ready"),
            (trainer_pb2.TRAINER_CHANGE_KIND_CHANGED, busy, "trainers 2 ready"),
            (trainer_pb2.TRAINER_CHANGE_KIND_LEFT, idle, "trainers 1 ready"),
            (trainer_pb2.TRAINER_CHANGE_KIND_LEFT, busy, "no trainer connected"),
        ]:
            change = trainer_pb2.TrainerChange(kind=kind, trainer=trainer)
            screen.post_message(TrainerChanged(change))
            await pilot.pause()
            assert expected in str(status.render()), (kind, trainer.name)
