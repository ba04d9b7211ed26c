"""The sweep screens against a real stack. Seed 3901 (TUI tests use 3000-3999) is this file's."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from tests.support.dashboard import until
from tests.support.stack import RunningStack
from tui.app import TunerApp
from tui.screens.sweep_detail import SweepDetailScreen
from tui.screens.sweeps import SweepsScreen
from tui.widgets.sweep_trials import TrialsTable
from tuner.client import TunerClient
from tuner.sweep_spec import parse
from tuner.v1 import sweep_pb2

SPEC = """
name: tui-live-grid
strategy: grid
max_trials: 2
parallelism: 1
space:
  epochs: [1]
  learning_rate: [0.001, 0.002]
  batch_size: [512]
  models: [mlp]
  optimizers: [adam]
  seed: [3901]
"""


async def test_a_grid_sweep_appears_runs_and_ends_with_a_best(running_stack: RunningStack) -> None:
    async with TunerClient(running_stack.address, "tui-sweeps") as client:
        app = TunerApp(client)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("f5")
            screen = app.screen
            assert isinstance(screen, SweepsScreen)
            created = await client.create_sweep(parse(SPEC))

            await until(pilot, lambda: created.id in screen.sweeps, what="the sweep listed")
            table = screen.query_one(DataTable)
            table.focus()
            table.move_cursor(row=table.get_row_index(created.id))
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, SweepDetailScreen), what="detail")
            detail = app.screen
            assert isinstance(detail, SweepDetailScreen)
            await until(
                pilot,
                lambda: detail.sweep.state == sweep_pb2.SWEEP_STATE_SUCCEEDED,
                timeout=240,
                what="the sweep succeeded",
            )
            final = detail.sweep
            assert len(final.trials) == 2
            assert final.best_trial in (1, 2)
            await pilot.pause()
            assert detail.query_one(TrialsTable).row_count == 2
            best = str(detail.query_one("#sweep-best", Static).render())
            assert best.startswith(f"best so far: #{final.best_trial} "), best
            assert not detail.check_action("cancel_sweep", ())

            # Back on the list, the refresh shows it ended.
            await pilot.press("escape")
            await until(
                pilot,
                lambda: screen.sweeps[created.id].state == sweep_pb2.SWEEP_STATE_SUCCEEDED,
                timeout=15,
                what="the list says succeeded",
            )
            row = [str(c) for c in table.get_row(created.id)]
            assert row[:4] == [created.id[:12], "tui-live-grid", "succeeded", "2/2"]
        assert (await client.get_sweep(created.id)).state == sweep_pb2.SWEEP_STATE_SUCCEEDED
