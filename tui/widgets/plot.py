"""A plotext chart whose colours come from the app's CSS."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class ThemedPlot(PlotextPlot):
    def colour(self, component: str) -> tuple[int, int, int] | str:
        """The colour of a component class (in app.tcss), as plotext takes it."""
        colour = self.get_component_rich_style(component).color
        if colour is None:
            return "default"
        r, g, b = colour.get_truecolor()
        return (r, g, b)
