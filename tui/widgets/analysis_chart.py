"""An analysis's charts: accuracy against a hyperparameter, parallel coordinates, and a
sweep's best accuracy so far by trial."""

from __future__ import annotations

import math
from collections.abc import Callable

from textual.app import RenderResult

from tui import formatting
from tui.widgets.series import SeriesPlot
from tuner.v1 import analysis_pb2, job_pb2

# The numeric hyperparameters a scatter can put on its x axis, in the order `h` cycles them.
NUMERIC = ("learning_rate", "epochs", "batch_size")
LOG = {"learning_rate"}
LABELS = {"learning_rate": "learning rate", "epochs": "epochs", "batch_size": "batch size"}
GROUPS: dict[str, Callable[[job_pb2.Hyperparameters], str]] = {
    "optimizer": formatting.optimizer,
    "model": formatting.model,
}
SCATTER, PARALLEL, BEST = "scatter", "parallel", "best so far"
# Parallel coordinates draw one line a job: past this many only the best are drawn.
MOST_LINES = 100
AXES = ("epochs", "learning_rate", "batch_size", "model", "optimizer")
MAX_TICKS = 6


def x_value(hp: job_pb2.Hyperparameters, field: str) -> float:
    value = float(getattr(hp, field))
    return math.log10(value) if field in LOG and value > 0 else value


def grouped(points: list[analysis_pb2.Point], by: str) -> dict[str, list[analysis_pb2.Point]]:
    """Points by their optimizer's (or model's) name, names in order."""
    groups: dict[str, list[analysis_pb2.Point]] = {}
    for point in points:
        groups.setdefault(GROUPS[by](point.hyperparameters), []).append(point)
    return dict(sorted(groups.items()))


def best_so_far(points: list[analysis_pb2.Point]) -> list[tuple[int, float]]:
    """(trial number, the best accuracy up to it), by trial number."""
    out: list[tuple[int, float]] = []
    best = -1.0
    for point in sorted(points, key=lambda p: p.trial_number):
        best = max(best, point.test_accuracy)
        out.append((point.trial_number, best))
    return out


def value_of(hp: job_pb2.Hyperparameters, axis: str) -> str | float:
    return GROUPS[axis](hp) if axis in GROUPS else x_value(hp, axis)


def varying(points: list[analysis_pb2.Point]) -> list[str]:
    """The AXES whose value is not the same for every point (a flat axis says nothing)."""
    return [a for a in AXES if len({value_of(p.hyperparameters, a) for p in points}) > 1]


def normalized(points: list[analysis_pb2.Point], axes: list[str]) -> list[list[float]]:
    """Each point across `axes` then accuracy, every axis scaled to 0..1 over the set."""
    columns: list[list[float]] = []
    for axis in axes:
        if axis in GROUPS:
            names = sorted({GROUPS[axis](p.hyperparameters) for p in points})
            columns.append([float(names.index(GROUPS[axis](p.hyperparameters))) for p in points])
        else:
            columns.append([x_value(p.hyperparameters, axis) for p in points])
    columns.append([p.test_accuracy for p in points])
    scaled = []
    for column in columns:
        low, high = min(column), max(column)
        scaled.append([(v - low) / (high - low) if high > low else 0.5 for v in column])
    return [list(row) for row in zip(*scaled, strict=True)]


def _spread(values: list[float]) -> list[float]:
    """At most MAX_TICKS of the distinct values, evenly picked."""
    distinct = sorted(set(values))
    step = max(1, math.ceil(len(distinct) / MAX_TICKS))
    return distinct[::step]


class AnalysisChart(SeriesPlot):
    """Shows one `view` of the points given; the colours are the series in the .tcss."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: list[analysis_pb2.Point] = []
        self.view = SCATTER
        self.field = NUMERIC[0]
        self.by = "optimizer"

    def show(self, points: list[analysis_pb2.Point], view: str, field: str, by: str) -> None:
        self.points, self.view, self.field, self.by = points, view, field, by
        self.refresh()

    def key(self, index: int, mark: str, name: str) -> str:
        """`mark name` as markup, the mark in the index-th series' colour."""
        colour = self.series(index)
        if isinstance(colour, tuple):
            mark = f"[#{colour[0]:02x}{colour[1]:02x}{colour[2]:02x}]{mark}[/]"
        return f"{mark} {name}"

    def legend(self) -> str:
        """What each colour means in the view shown, as markup for a title."""
        if self.view == BEST:
            return f"{self.key(0, '━', 'best so far')}  {self.key(1, '●', 'trial')}"
        names = grouped(self.points, self.by)
        return "  ".join(self.key(i, "●", name) for i, name in enumerate(names))

    def render(self) -> RenderResult:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not self.points:
            plt.title("no finished job")
        elif self.view == SCATTER:
            self._scatter()
        elif self.view == PARALLEL:
            self._parallel()
        else:
            self._best()
        return super().render()

    def _scatter(self) -> None:
        plt = self.plt
        for index, points in enumerate(grouped(self.points, self.by).values()):
            plt.scatter(
                [x_value(p.hyperparameters, self.field) for p in points],
                [p.test_accuracy * 100 for p in points],
                marker="●",
                color=self.series(index),
            )  # no legend, which would hide points: the title carries it
        xs = [x_value(p.hyperparameters, self.field) for p in self.points]
        ticks = _spread(xs)
        if self.field in LOG:
            plt.xticks(ticks, [f"{10**t:.3g}" for t in ticks])
            plt.xlabel(f"{LABELS[self.field]} (log10 axis)")
        else:
            plt.xticks(ticks, [f"{t:g}" for t in ticks])
            plt.xlabel(LABELS[self.field])
        margin = (max(xs) - min(xs)) * 0.08 or 0.5
        plt.xlim(min(xs) - margin, max(xs) + margin)
        self._accuracy_limits()

    def _parallel(self) -> None:
        plt = self.plt
        ranked = sorted(self.points, key=lambda p: -p.test_accuracy)[:MOST_LINES]
        names = list(grouped(ranked, self.by))
        shown = varying(ranked)
        axes = list(range(len(shown) + 1))
        for point, row in zip(ranked, normalized(ranked, shown), strict=True):
            group = GROUPS[self.by](point.hyperparameters)
            plt.plot(axes, row, marker="braille", color=self.series(names.index(group)))
        labels = [LABELS.get(a, a).replace("learning rate", "lr (log)") for a in shown]
        plt.xticks([float(a) for a in axes], [*labels, "accuracy"])
        plt.xlim(-0.1, len(shown) + 0.1)
        plt.yticks([0.0, 1.0], ["min", "max"])
        plt.ylim(-0.05, 1.05)
        if len(self.points) > MOST_LINES:
            plt.title(f"the best {MOST_LINES} of {len(self.points)}")

    def _best(self) -> None:
        plt = self.plt
        curve = best_so_far(self.points)
        numbers = [n for n, _ in curve]
        plt.plot(
            numbers,
            [best * 100 for _, best in curve],
            marker="braille" if len(curve) > 1 else "●",
            color=self.series(0),
        )
        plt.scatter(
            [p.trial_number for p in self.points],
            [p.test_accuracy * 100 for p in self.points],
            marker="●",
            color=self.series(1),
        )
        ticks = _spread([float(n) for n in numbers])
        plt.xticks(ticks, [f"{t:g}" for t in ticks])
        plt.xlim(min(numbers) - 0.5, max(numbers) + 0.5)
        plt.xlabel("trial")
        self._accuracy_limits()

    def _accuracy_limits(self) -> None:
        accuracies = [p.test_accuracy * 100 for p in self.points]
        self.plt.ylim(max(0.0, min(accuracies) - 1), min(100.0, max(accuracies) + 0.5))
        self.plt.ylabel("accuracy %")
