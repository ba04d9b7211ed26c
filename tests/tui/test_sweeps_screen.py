"""The sweep screens, fed fixed sweeps: no server, no clock but the test's."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import DataTable, Label, Static

from tests.support.dashboard import ME, offline_app, still, until
from tests.tui.sweep_data import EMPTY_SWEEP, FINISHED_SWEEP, RUNNING_SWEEP, TRIALS, sweep
from tui import sweeps
from tui.app import TunerApp
from tui.messages import Connected, RequestFailed, SweepsLoaded, SweepSnapshot
from tui.screens.sweep_detail import SweepDetailScreen
from tui.screens.sweeps import EMPTY, SweepsScreen
from tui.widgets.sweep_trials import AccuracyChart, TrialsTable
from tuner.client import TunerClient
from tuner.v1 import sweep_pb2

SnapCompare = Callable[..., bool]


def rows(table: DataTable[str]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_f5_and_the_palette_open_the_sweeps(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        assert "Sweeps" in [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("f5")
        assert isinstance(app.screen, SweepsScreen)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"sweeps", "enter")
        await until(pilot, lambda: isinstance(app.screen, SweepsScreen), timeout=5, what="sweeps")


async def test_the_list_says_how_to_create_one_until_there_are_sweeps(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        await pilot.press("f5")
        screen = app.screen
        assert isinstance(screen, SweepsScreen)
        empty = screen.query_one("#sweeps-empty", Static)
        assert "Create one with: tuner sweep create spec.yaml" in EMPTY
        assert empty.display and not screen.query_one("#sweeps").display

        screen.post_message(SweepsLoaded([FINISHED_SWEEP, EMPTY_SWEEP, RUNNING_SWEEP]))
        await pilot.pause()
        assert not empty.display
        # Newest first: the fixtures' higher numbers were created later.
        assert rows(screen.query_one(DataTable)) == [
            [EMPTY_SWEEP.id[:12], "(unnamed)", "running", "0/4", "0", "-"],
            [FINISHED_SWEEP.id[:12], "first-try", "succeeded", "2/2", "1", "97.12%"],
            [RUNNING_SWEEP.id[:12], "lr-search", "running", "6/6", "1", "97.80%"],
        ]
        title = str(screen.query_one("#sweeps-title", Label).render())
        assert title == f"Sweeps of {ME}: 3 shown, 2 running"

        # Enter opens the one under the cursor.
        screen.query_one(DataTable).focus()
        await pilot.press("down", "down", "enter")
        await until(pilot, lambda: isinstance(app.screen, SweepDetailScreen), timeout=5)
        detail = app.screen
        assert isinstance(detail, SweepDetailScreen)
        assert detail.sweep.id == RUNNING_SWEEP.id


async def test_detail_rows_best_line_and_marks(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(SweepDetailScreen(client, RUNNING_SWEEP, app.clock, live=False))
        await pilot.pause()
        screen = app.screen
        assert rows(screen.query_one(TrialsTable)) == [
            ["1", "succeeded", "97.12%", "3/3", "0.001", "64", "mlp", "adam", ""],
            ["2", "cancelled", "41.33%", "1/3", "0.3", "128", "mlp", "adam", "pruned"],
            ["3★", "succeeded", "97.80%", "3/3", "0.002", "64", "mlp", "adam", "reused"],
            ["4", "succeeded", "96.55%", "3/3", "0.01", "64", "mlp", "sgd", ""],
            ["5", "running", "95.21%", "1/3", "0.0005", "128", "mlp", "adam", ""],
            ["6", "queued", "-", "0/3", "0.004", "64", "mlp", "adam", ""],
        ]
        best = str(screen.query_one("#sweep-best", Static).render())
        assert best == "best so far: #3 97.80% · mlp/adam lr=0.002 bs=64 s=7"
        title = str(screen.query_one("#sweep-title", Label).render())
        assert (
            title == f"Sweep {RUNNING_SWEEP.id[:12]} · lr-search · running · 6/6 trials, 1 pruned"
        )
        # The chart has the measured trials: finished ones and the pruned one.
        chart = screen.query_one(AccuracyChart)
        assert [t.number for t in chart._trials] == [1, 2, 3, 4]

        # A newer snapshot replaces it; an older one (a late answer) does not.
        ended = sweep(1, TRIALS[:4], state=sweep_pb2.SWEEP_STATE_CANCELLED, best=3, updated=5)
        screen.post_message(SweepSnapshot(ended))
        await pilot.pause()
        assert screen.has_class("-cancelled")
        screen.post_message(SweepSnapshot(RUNNING_SWEEP))
        await pilot.pause()
        assert screen.has_class("-cancelled")
        assert screen.query_one(TrialsTable).row_count == 4


async def test_no_best_line_before_a_trial_succeeds(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        app.push_screen(SweepDetailScreen(client, EMPTY_SWEEP, app.clock, live=False))
        await pilot.pause()
        best = str(app.screen.query_one("#sweep-best", Static).render())
        assert best == "best so far: none (no trial has succeeded yet)"
        assert sweeps.best(EMPTY_SWEEP) is None


async def test_cancel_is_offered_only_for_my_running_sweeps(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        cases = [
            (RUNNING_SWEEP, True),
            (FINISHED_SWEEP, False),
            (sweep(4, [], state=sweep_pb2.SWEEP_STATE_CANCELLED), False),
            (EMPTY_SWEEP, False),  # running, but bob's
        ]
        for shown, expected in cases:
            screen = SweepDetailScreen(app.client, shown, app.clock, live=False)
            assert bool(screen.check_action("cancel_sweep", ())) is expected
        app.push_screen(SweepDetailScreen(client, RUNNING_SWEEP, app.clock, live=False))
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Cancel this sweep" in titles
        app.push_screen(SweepDetailScreen(client, FINISHED_SWEEP, app.clock, live=False))
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Cancel this sweep" not in titles


def test_sweep_detail(snap_compare: SnapCompare, offline_client: TunerClient) -> None:
    async def run_before(pilot: Pilot[object]) -> None:
        app = pilot.app
        assert isinstance(app, TunerApp)
        app.push_screen(SweepDetailScreen(offline_client, RUNNING_SWEEP, app.clock, live=False))
        await pilot.pause()
        await pilot.pause()
        still(pilot)
        await pilot.pause()

    app = offline_app(offline_client)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def test_a_sweep_screen_says_when_its_watch_is_lost_and_back(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        # Live: it watches the sweep at an address where nothing listens.
        screen = SweepDetailScreen(app.client, RUNNING_SWEEP, app.clock, live=True)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.has_class("-offline"), timeout=5, what="offline")
        lost = [n.message for n in app._notifications if n.title == "Connection lost"]
        assert len(lost) == 1 and lost[0].startswith("Watching this sweep again in 1s (")

        # Its next try would fail again and race the message below.
        screen.workers.cancel_node(screen)
        await pilot.pause()
        screen.post_message(Connected())
        await pilot.pause()
        assert not screen.has_class("-offline")
        screen.post_message(RequestFailed("watch sweep", "NOT_FOUND", "sweep_id: no sweep"))
        await pilot.pause()
        failed = [(n.title, n.message) for n in app._notifications if n.severity == "error"]
        assert failed == [("NOT_FOUND", "watch sweep: sweep_id: no sweep")]
