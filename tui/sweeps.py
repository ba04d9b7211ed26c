"""Facts and short texts about sweeps that the sweep screens and widgets share."""

from __future__ import annotations

from tui import formatting
from tuner.core import states
from tuner.v1 import sweep_pb2


def state(sweep: sweep_pb2.Sweep) -> str:
    """'running' for SWEEP_STATE_RUNNING."""
    return states.sweep_name(sweep.state).lower()


def name(sweep: sweep_pb2.Sweep) -> str:
    return sweep.spec.name or "(unnamed)"


def best(sweep: sweep_pb2.Sweep) -> sweep_pb2.Trial | None:
    """The best trial so far, None while no trial has succeeded."""
    for trial in sweep.trials:
        if sweep.best_trial and trial.number == sweep.best_trial:
            return trial
    return None


def pruned(sweep: sweep_pb2.Sweep) -> int:
    return sum(t.pruned for t in sweep.trials)


def trials(sweep: sweep_pb2.Sweep) -> str:
    """'3/8': trials started of the budget."""
    return f"{len(sweep.trials)}/{sweep.spec.max_trials}"


def best_accuracy(sweep: sweep_pb2.Sweep) -> str:
    found = best(sweep)
    return formatting.percent(found.test_accuracy) if found else "-"


def best_line(sweep: sweep_pb2.Sweep) -> str:
    """'best so far: #3 97.12% · mlp/adam lr=0.001 bs=64 s=7', or that there is none yet."""
    found = best(sweep)
    if found is None:
        return "best so far: none (no trial has succeeded yet)"
    return (
        f"best so far: #{found.number} {formatting.percent(found.test_accuracy)} · "
        f"{formatting.short(found.hyperparameters)}"
    )


def marks(trial: sweep_pb2.Trial) -> str:
    """'pruned', 'reused', or blank."""
    return " ".join(word for word, on in (("pruned", trial.pruned), ("reused", trial.reused)) if on)


def newer(incoming: sweep_pb2.Sweep, current: sweep_pb2.Sweep) -> bool:
    """Whether `incoming` is at least as new as `current` (a late cancel answer is not)."""
    a, b = incoming.update_time, current.update_time
    return (a.seconds, a.nanos) >= (b.seconds, b.nanos)
