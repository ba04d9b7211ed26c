"""Hyperparameter importances as text bars: name, bar, value; the undefined ones with why."""

from __future__ import annotations

from textual.widgets import Static

from tuner.v1 import analysis_pb2

BAR = 16
EIGHTHS = " ▏▎▍▌▋▊▉"
NAMES = {"learning_rate": "learning rate", "batch_size": "batch size"}


def bar(value: float, width: int = BAR) -> str:
    """A bar `value` (0 to 1) of `width` cells, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, value)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width)


def lines(importances: list[analysis_pb2.Importance]) -> list[str]:
    """Most important first; when none is defined for one reason, that reason once."""
    undefined = [i for i in importances if not i.defined]
    if importances and len(undefined) == len(importances):
        reasons = {i.reason for i in undefined}
        if len(reasons) == 1:
            return [f"not computed: {reasons.pop()}"]
    out = []
    for imp in importances:
        if imp.defined:
            out.append(f"{NAMES.get(imp.name, imp.name):<13} {bar(imp.value)} {imp.value:4.2f}")
    # The undefined ones, a line for each reason: a set often has several with one value.
    why: dict[str, list[str]] = {}
    for imp in undefined:
        why.setdefault(imp.reason, []).append(NAMES.get(imp.name, imp.name))
    out += [f"{', '.join(names)}: {reason}" for reason, names in why.items()]
    return out


class ImportanceBars(Static):
    def show(self, importances: list[analysis_pb2.Importance]) -> None:
        self.update("\n".join(lines(importances)) or "no importances")
