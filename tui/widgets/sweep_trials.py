"""A sweep's trials: a table, one row a trial, and a chart of accuracy by trial number."""

from __future__ import annotations

from typing import ClassVar

from textual.app import RenderResult
from textual.widgets import DataTable

from tui import formatting
from tui.sweeps import marks
from tui.widgets.plot import ThemedPlot
from tuner.v1 import job_pb2, sweep_pb2

COLUMNS = ("#", "state", "accuracy", "epochs", "lr", "batch", "model", "optimizer", "notes")


def row(trial: sweep_pb2.Trial) -> tuple[str, ...]:
    hp = trial.hyperparameters
    measured = trial.epochs_done > 0 or trial.state == job_pb2.JOB_STATE_SUCCEEDED
    return (
        str(trial.number),
        formatting.state(trial.state),
        formatting.percent(trial.test_accuracy) if measured else "-",
        f"{trial.epochs_done}/{hp.epochs}",
        f"{hp.learning_rate:g}",
        str(hp.batch_size),
        formatting.model(hp),
        formatting.optimizer(hp),
        marks(trial),
    )


class TrialsTable(DataTable[str]):
    """One row a trial, by number; the best one is marked with a star."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*COLUMNS)

    def show(self, sweep: sweep_pb2.Sweep) -> None:
        cursor = self.cursor_row
        self.clear()
        for trial in sorted(sweep.trials, key=lambda t: t.number):
            cells = list(row(trial))
            if trial.number == sweep.best_trial:
                cells[0] = f"{trial.number}★"
            self.add_row(*cells, key=str(trial.number))
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1))


class AccuracyChart(ThemedPlot):
    """Each measured trial's test accuracy (%) by trial number, the best and pruned ones marked.

    The colours are component classes, so they are set in the .tcss like all colours.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "accuracy-chart--trial",
        "accuracy-chart--pruned",
        "accuracy-chart--best",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._trials: list[sweep_pb2.Trial] = []
        self._best = 0

    def show(self, sweep: sweep_pb2.Sweep) -> None:
        self._trials = sorted(
            (
                t
                for t in sweep.trials
                if t.state == job_pb2.JOB_STATE_SUCCEEDED or (t.pruned and t.epochs_done)
            ),
            key=lambda t: t.number,
        )
        self._best = sweep.best_trial
        self.refresh()

    def render(self) -> RenderResult:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not self._trials:
            plt.title("no trial measured yet")
            return super().render()
        # No legend (it would hide points): the panel's title names the markers.
        groups = (
            ([t for t in self._trials if t.pruned], "x", "accuracy-chart--pruned"),
            (
                [t for t in self._trials if not t.pruned and t.number != self._best],
                "●",
                "accuracy-chart--trial",
            ),
            ([t for t in self._trials if t.number == self._best], "◆", "accuracy-chart--best"),
        )
        for trials, marker, component in groups:
            if trials:
                plt.scatter(
                    [t.number for t in trials],
                    [t.test_accuracy * 100 for t in trials],
                    marker=marker,
                    color=self.colour(component),
                )
        numbers = [t.number for t in self._trials]
        accuracies = [t.test_accuracy * 100 for t in self._trials]
        step = max(1, len(numbers) // 10)
        ticks = numbers[::step]
        plt.xticks([float(n) for n in ticks], [str(n) for n in ticks])
        plt.xlim(min(numbers) - 0.5, max(numbers) + 0.5)
        plt.ylim(max(0.0, min(accuracies) - 1), min(100.0, max(accuracies) + 0.5))
        plt.xlabel("trial")
        return super().render()
