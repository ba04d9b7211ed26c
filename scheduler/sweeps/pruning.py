"""Early stopping: whether a running trial should stop, from per-epoch accuracies."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from tuner.v1 import sweep_pb2

# A trial's curve: test accuracy after epoch 1, 2, ...
Curve = Sequence[float]


def rungs(min_epochs: int, factor: int, max_epochs: int) -> list[int]:
    """ASHA's rung epochs: min, min*factor, min*factor^2, ... below max_epochs."""
    out, epoch = [], max(1, min_epochs)
    while epoch < max_epochs:
        out.append(epoch)
        epoch *= factor
    return out


def asha_stops(
    curve: Curve, others: Sequence[Curve], rung_epochs: Sequence[int], factor: int
) -> bool:
    """At the last rung the trial reached: stop unless it is in the top 1/factor there.

    `others` are the other trials' curves; those that reached the same rung compete.
    With fewer than `factor` competitors only the best so far goes on.
    """
    reached = [r for r in rung_epochs if r <= len(curve)]
    if not reached:
        return False
    rung = reached[-1]
    mine = curve[rung - 1]
    competitors = [c[rung - 1] for c in others if len(c) >= rung] + [mine]
    keep = max(1, len(competitors) // factor)
    better = sum(1 for value in competitors if value > mine)
    return better >= keep


def median_stops(curve: Curve, finished: Sequence[Curve], min_epochs: int) -> bool:
    """Stop when the trial's best so far is below the median of finished trials at that epoch."""
    epoch = len(curve)
    if epoch < max(1, min_epochs):
        return False
    at_epoch = [max(c[:epoch]) for c in finished if len(c) >= epoch]
    if len(at_epoch) < 2:
        return False
    return max(curve) < statistics.median(at_epoch)


def should_stop(
    spec: sweep_pb2.SweepSpec,
    curve: Curve,
    epochs: int,
    others: Sequence[Curve],
    finished: Sequence[Curve],
) -> bool:
    """Whether the trial with this curve (of `epochs` in all) should be pruned now."""
    if not curve or len(curve) >= epochs:
        return False
    if spec.early_stopping == sweep_pb2.EARLY_STOPPING_ASHA:
        factor = spec.reduction_factor or 3
        return asha_stops(curve, others, rungs(spec.min_epochs or 1, factor, epochs), factor)
    if spec.early_stopping == sweep_pb2.EARLY_STOPPING_MEDIAN:
        return median_stops(curve, finished, spec.min_epochs or 1)
    return False
