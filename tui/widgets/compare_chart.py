"""2 to 4 jobs' epochs overlaid: test accuracy, test loss or train loss, one colour a job."""

from __future__ import annotations

from textual.app import RenderResult

from tui.widgets.series import SeriesPlot
from tuner.v1 import job_pb2

# What `m` cycles through: (EpochMetrics field, the chart's name for it, its scale).
METRICS = (
    ("test_accuracy", "test accuracy %", 100.0),
    ("test_loss", "test loss", 1.0),
    ("train_loss", "train loss", 1.0),
)


def label(index: int, job: job_pb2.Job) -> str:
    return f"{index + 1}: {job.id[:12]}"


class CompareChart(SeriesPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.jobs: list[job_pb2.Job] = []
        self.metric = 0

    def show(self, jobs: list[job_pb2.Job], metric: int) -> None:
        self.jobs, self.metric = jobs, metric
        self.refresh()

    def render(self) -> RenderResult:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        field, name, scale = METRICS[self.metric]
        values: list[float] = []
        epochs: set[int] = set()
        for index, job in enumerate(self.jobs):
            history = sorted(job.history, key=lambda m: m.epoch)
            if not history:
                continue
            ys = [getattr(m, field) * scale for m in history]
            values += ys
            epochs |= {m.epoch for m in history}
            plt.plot(
                [m.epoch for m in history],
                ys,
                marker="braille" if len(history) > 1 else "●",
                color=self.series(index),
            )  # no legend, which would hide lines: the table's headers carry the colours
        if not values:
            plt.title("no epoch finished yet")
            return super().render()
        ticks = sorted(epochs)
        plt.xticks([float(e) for e in ticks], [str(e) for e in ticks])
        plt.xlim(min(ticks) - 0.2, max(ticks) + 0.2)
        plt.xlabel("epoch")
        spread = (max(values) - min(values)) * 0.1 or 0.5
        plt.ylim(max(0.0, min(values) - spread), max(values) + spread)
        plt.ylabel(name)
        return super().render()
