"""The Analysis and Compare screens, fed a fixed 6-job grid and fixed jobs: no server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.support.dashboard import offline_app, still, until
from tests.tui.analysis_data import COMPARED, ONE_VALUE, empty, grid
from tests.tui.sweep_data import RUNNING_SWEEP
from tui.app import TunerApp
from tui.messages import AnalysisLoaded, OpenJob
from tui.screens.analysis import AnalysisScreen
from tui.screens.compare import CompareScreen
from tui.screens.detail import JobDetailScreen
from tui.screens.sweep_detail import SweepDetailScreen
from tui.widgets.analysis_chart import (
    BEST,
    PARALLEL,
    SCATTER,
    AnalysisChart,
    best_so_far,
    grouped,
    normalized,
    varying,
)
from tui.widgets.compare_chart import CompareChart
from tui.widgets.importances import bar, lines
from tuner.client import TunerClient
from tuner.v1 import analysis_pb2, job_pb2

SnapCompare = Callable[..., bool]
SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


def text(screen: object, selector: str) -> str:
    assert isinstance(screen, AnalysisScreen | CompareScreen)
    return str(screen.query_one(selector, Static).render())


# What the charts draw, from the grid.


def test_importances_are_bars_and_the_undefined_ones_say_why_once() -> None:
    assert bar(1.0) == "█" * 16 and bar(0.0) == " " * 16 and bar(0.5, 4) == "██  "
    assert lines(list(grid().importances)) == [
        f"learning rate {bar(0.61)} 0.61",
        f"optimizer     {bar(0.39)} 0.39",
        f"epochs, batch size, dataset, model, seed: {ONE_VALUE}",
    ]
    too_few = [
        analysis_pb2.Importance(name=n, reason="the set holds 3 jobs") for n in ("epochs", "seed")
    ]
    assert lines(too_few) == ["not computed: the set holds 3 jobs"]


def test_points_group_by_optimizer_or_model_and_the_best_only_rises() -> None:
    points = list(grid().points)
    assert {k: len(v) for k, v in grouped(points, "optimizer").items()} == {"adam": 3, "sgd": 3}
    assert list(grouped(points, "model")) == ["mlp"]
    assert [round(best, 4) for _, best in best_so_far(points)] == [
        0.9512,
        0.9781,
        0.9781,
        0.9781,
        0.9781,
        0.9781,
    ]


def test_parallel_coordinates_skip_flat_axes_and_scale_each_to_0_1() -> None:
    points = list(grid().points)
    assert varying(points) == ["learning_rate", "optimizer"]
    rows = normalized(points, varying(points))
    # adam at 1e-4 (log scale: the low end), adam first of the optimizers, accuracy in between.
    assert rows[0][:2] == [0.0, 0.0] and 0 < rows[0][2] < 1
    assert rows[1] == pytest.approx([0.5, 0.0, 1.0])  # the best: adam at 1e-3
    assert rows[3] == pytest.approx([0.0, 1.0, 0.0])  # the worst: sgd at 1e-4


# Opening the screens.


async def test_f8_and_the_palette_open_the_analysis_of_the_shown_dataset(
    client: TunerClient,
) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        assert "Analysis" in [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("f7")  # the leaderboard shows fashion-mnist now
        await pilot.press("f8")
        screen = app.screen
        assert isinstance(screen, AnalysisScreen) and screen.sweep is None
        assert screen.request() == analysis_pb2.AnalyzeRequest(
            filter=analysis_pb2.JobFilter(dataset=job_pb2.DATASET_FASHION_MNIST)
        )
        assert "fashion-mnist" in text(screen, "#analysis-title")
        await pilot.press("d")
        assert screen.dataset == "mnist" and "· mnist ·" in text(screen, "#analysis-title")
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"analysis", "enter")
        await until(pilot, lambda: isinstance(app.screen, AnalysisScreen), timeout=5)


async def test_a_in_a_sweep_analyses_its_trials_with_a_best_so_far_view(
    client: TunerClient,
) -> None:
    app = offline_app(client)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(SweepDetailScreen(client, RUNNING_SWEEP, app.clock, live=False))
        await pilot.press("a")
        screen = app.screen
        assert isinstance(screen, AnalysisScreen)
        assert screen.request() == analysis_pb2.AnalyzeRequest(sweep_id=RUNNING_SWEEP.id)
        assert not screen.check_action("next_dataset", ())
        screen.post_message(AnalysisLoaded(grid()))
        await pilot.pause()
        chart = screen.query_one(AnalysisChart)
        views = []
        for _ in range(3):
            views.append(chart.view)
            await pilot.press("v")
        assert views == [SCATTER, PARALLEL, BEST]
        assert chart.view == SCATTER


async def test_the_analysis_shows_the_best_the_importances_and_cycles_its_chart(
    client: TunerClient,
) -> None:
    app = offline_app(client)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f8")
        screen = app.screen
        assert isinstance(screen, AnalysisScreen)
        screen.post_message(AnalysisLoaded(grid()))
        await pilot.pause()
        summary = text(screen, "#analysis-summary")
        assert summary.startswith("6 jobs · best 027777777777 97.81% · mlp/adam mnist e=3 lr=0.001")
        assert "learning rate" in text(screen, "#analysis-importances")
        chart = screen.query_one(AnalysisChart)
        assert (chart.view, chart.field, chart.by) == (SCATTER, "learning_rate", "optimizer")
        title = str(chart.border_title)
        assert title.startswith("Accuracy % by learning rate · [#")  # the legend, coloured
        assert "] adam" in title and "] sgd" in title
        await pilot.press("h")
        assert chart.field == "epochs"
        await pilot.press("h", "h", "o")
        assert (chart.field, chart.by) == ("learning_rate", "model")
        await pilot.press("v")  # no best-so-far view outside a sweep: the scatter again next
        assert chart.view == PARALLEL and not screen.check_action("next_field", ())
        await pilot.press("v")
        assert chart.view == SCATTER


async def test_an_empty_set_says_no_finished_job_matches(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        await pilot.press("f8")
        screen = app.screen
        assert isinstance(screen, AnalysisScreen)
        screen.post_message(AnalysisLoaded(empty()))
        await pilot.pause()
        assert screen.has_class("-empty")
        assert screen.query_one("#analysis-empty").display
        assert not screen.query_one("#analysis-body").display
        assert "No finished job matches this set" in text(screen, "#analysis-empty")
        assert not [n for n in app._notifications if n.severity == "error"]


async def test_the_analysis_says_when_the_scheduler_does_not_answer(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        # Live: it asks an address where nothing listens.
        screen = AnalysisScreen(app.client, live=True)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.has_class("-offline"), timeout=5, what="offline")
        lost = [n.message for n in app._notifications if n.title == "Connection lost"]
        assert len(lost) == 1 and lost[0].startswith("Asking for this analysis again in 1s (")
        assert text(screen, "#analysis-summary").startswith("the scheduler does not answer (")


async def test_x_marks_jobs_in_their_detail_and_f9_compares_them(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f9")
        assert not isinstance(app.screen, CompareScreen)  # nothing marked: it says how
        assert any("x in a job's detail" in n.message for n in app._notifications)
        for job in COMPARED:
            app.post_message(OpenJob(job))
            await until(pilot, lambda: isinstance(app.screen, JobDetailScreen), timeout=5)
            await pilot.press("x")
            await pilot.press("escape")
        app.post_message(OpenJob(COMPARED[2]))
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen), timeout=5)
        await pilot.press("x")  # unmarks it
        assert [j.id for j in app.compare] == [j.id for j in COMPARED[:2]]
        await pilot.press("f9")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        table = screen.query_one(DataTable)
        assert [str(c.label) for c in table.columns.values()] == [
            "",
            "1: a1c3e5000000",
            "2: b2d4f6000000",
        ]
        assert [str(c) for c in table.get_row("learning rate")] == [
            "learning rate",
            "0.001",
            "0.01",
        ]
        assert [str(c) for c in table.get_row("optimizer")] == ["optimizer", "adam", "sgd"]
        chart = screen.query_one(CompareChart)
        assert chart.metric == 0 and chart.border_title is not None
        assert chart.border_title.startswith("Test accuracy % by epoch")
        await pilot.press("m")
        assert chart.border_title.startswith("Test loss")
        await pilot.press("m")
        assert chart.border_title.startswith("Train loss")


async def test_compare_holds_at_most_four(client: TunerClient) -> None:
    app = offline_app(client)
    async with app.run_test() as pilot:
        assert isinstance(app, TunerApp)
        jobs = [job_pb2.Job(id=f"{n:032x}") for n in range(5)]
        assert [app.toggle_compare(j) for j in jobs] == [True, True, True, True, False]
        assert len(app.compare) == 4
        await pilot.pause()


# Pictures.


async def settle(pilot: Pilot[object]) -> None:
    await pilot.pause()
    await pilot.pause()
    still(pilot)
    await pilot.pause()


def analysis_app(
    client: TunerClient, response: analysis_pb2.AnalyzeResponse, *keys: str, sweep: bool = False
) -> tuple[TunerApp, Callable[[Pilot[object]], object]]:
    async def run_before(pilot: Pilot[object]) -> None:
        screen = AnalysisScreen(client, False, sweep=RUNNING_SWEEP if sweep else None)
        await pilot.app.push_screen(screen)
        screen.post_message(AnalysisLoaded(response))
        await pilot.pause()
        await pilot.press(*keys)
        await settle(pilot)

    return offline_app(client), run_before


@SIZES
def test_analysis(
    snap_compare: SnapCompare, offline_client: TunerClient, size: tuple[int, int]
) -> None:
    app, run_before = analysis_app(offline_client, grid())
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_analysis_parallel(
    snap_compare: SnapCompare, offline_client: TunerClient, size: tuple[int, int]
) -> None:
    app, run_before = analysis_app(offline_client, grid(), "v")
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_sweep_analysis_best_so_far(
    snap_compare: SnapCompare, offline_client: TunerClient, size: tuple[int, int]
) -> None:
    app, run_before = analysis_app(offline_client, grid(), "v", "v", sweep=True)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_analysis_empty(snap_compare: SnapCompare, offline_client: TunerClient) -> None:
    app, run_before = analysis_app(offline_client, empty())
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@SIZES
def test_compare(
    snap_compare: SnapCompare, offline_client: TunerClient, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot[object]) -> None:
        await pilot.app.push_screen(CompareScreen(offline_client, COMPARED, False))
        await settle(pilot)

    assert snap_compare(offline_app(offline_client), terminal_size=size, run_before=run_before)
