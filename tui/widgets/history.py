"""A job's epochs: a table of metrics and a loss/accuracy chart."""

from __future__ import annotations

from typing import ClassVar

from textual.app import RenderResult
from textual.widgets import DataTable

from tui import formatting
from tui.widgets.plot import ThemedPlot
from tuner.v1 import job_pb2

COLUMNS = ("epoch", "train loss", "test loss", "accuracy", "training", "evaluation")


class EpochTable(DataTable[str]):
    """One row an epoch, in order."""

    DEFAULT_CSS = """
    EpochTable {
        height: auto;
        max-height: 12;
    }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*COLUMNS)

    def show(self, history: list[job_pb2.EpochMetrics]) -> None:
        self.clear()
        for m in sorted(history, key=lambda m: m.epoch):
            self.add_row(
                str(m.epoch),
                f"{m.train_loss:.4f}",
                f"{m.test_loss:.4f}",
                formatting.percent(m.test_accuracy),
                formatting.span(formatting.seconds(m.training_duration)),
                formatting.span(formatting.seconds(m.evaluation_duration)),
                key=str(m.epoch),
            )


class EpochChart(ThemedPlot):
    """Train and test loss on the left axis, test accuracy (%) on the right, by epoch.

    The line colours are component classes, so they are set in the .tcss like all colours.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "epoch-chart--train-loss",
        "epoch-chart--test-loss",
        "epoch-chart--accuracy",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._history: list[job_pb2.EpochMetrics] = []

    def show(self, history: list[job_pb2.EpochMetrics]) -> None:
        self._history = sorted(history, key=lambda m: m.epoch)
        self.refresh()

    def render(self) -> RenderResult:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("loss and accuracy by epoch")
        if not self._history:
            plt.title("no epoch finished yet")
            return super().render()
        epochs = [m.epoch for m in self._history]
        losses = [m.train_loss for m in self._history] + [m.test_loss for m in self._history]
        accuracies = [m.test_accuracy * 100 for m in self._history]
        marker = "braille" if len(epochs) > 1 else "●"  # a lone braille dot is hard to see
        plt.plot(
            epochs,
            [m.train_loss for m in self._history],
            label="train loss",
            marker=marker,
            color=self.colour("epoch-chart--train-loss"),
        )
        plt.plot(
            epochs,
            [m.test_loss for m in self._history],
            label="test loss",
            marker=marker,
            color=self.colour("epoch-chart--test-loss"),
        )
        plt.plot(
            epochs,
            accuracies,
            label="accuracy %",
            marker=marker,
            yside="right",
            color=self.colour("epoch-chart--accuracy"),
        )
        plt.xticks([float(epoch) for epoch in epochs], [str(epoch) for epoch in epochs])
        plt.xlabel("epoch")
        # A single epoch would otherwise get an axis of a made-up span around its point.
        plt.ylim(0, max(losses) * 1.1 or 1)
        plt.ylim(max(0.0, min(accuracies) - 1), min(100.0, max(accuracies) + 0.5), yside="right")  # type: ignore[arg-type]  # plotext annotates yside wrongly
        return super().render()
