"""A chart whose series (one per job or group) take their colours from the app's CSS."""

from __future__ import annotations

from typing import ClassVar

from tui.widgets.plot import ThemedPlot

SERIES = 5


class SeriesPlot(ThemedPlot):
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"series-plot--{i}" for i in range(SERIES)}

    def series(self, index: int) -> tuple[int, int, int] | str:
        """The colour of the index-th series (they repeat after SERIES)."""
        return self.colour(f"series-plot--{index % SERIES}")
