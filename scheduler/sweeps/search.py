"""Search strategies: the next trial's hyperparameters, from the spec and the trials so far.

Each strategy is a pure function of what is stored, so a restarted scheduler picks up
exactly where the last one stopped.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tuner.core.hyperparameters import FieldError, normalized
from tuner.v1 import job_pb2, sweep_pb2

NUMERIC = ("epochs", "learning_rate", "batch_size", "seed")
INTEGER = ("epochs", "batch_size", "seed")
CATEGORICAL = {"datasets": "dataset", "models": "model", "optimizers": "optimizer"}
DEFAULTS: dict[str, list[int]] = {
    "datasets": [job_pb2.DATASET_MNIST],
    "models": [job_pb2.MODEL_CNN],
    "optimizers": [job_pb2.OPTIMIZER_ADAM],
}
NAMES = NUMERIC + tuple(CATEGORICAL.values())
MAX_GRID = 10_000
# What a trial costs, roughly, to order grid and random trials: per-sample work grows with the
# model, and each step adds about the cost of 120 samples (measured for the MLP on one CPU
# thread: a batch of 64 takes ~1.9x as long an epoch as one of 256). Only the order counts.
MODEL_COST = {job_pb2.MODEL_MLP: 1.0, job_pb2.MODEL_CNN: 15.0}
STEP_SAMPLES = 120


@dataclass(frozen=True)
class Finished:
    """A trial the strategy learns from: its configuration and accuracy (None: no result)."""

    hyperparameters: job_pb2.Hyperparameters
    accuracy: float | None


def check_spec(spec: sweep_pb2.SweepSpec) -> None:
    """Raises FieldError (field names relative to the request) on the first problem."""
    if not 1 <= spec.max_trials <= 1000:
        raise FieldError("spec.max_trials", f"must be between 1 and 1000, got {spec.max_trials}")
    if not 0 <= spec.parallelism <= 100:
        raise FieldError("spec.parallelism", f"must be between 1 and 100, got {spec.parallelism}")
    if spec.strategy not in sweep_pb2.SearchStrategy.values():
        raise FieldError("spec.strategy", f"unknown strategy {spec.strategy}")
    if spec.early_stopping not in sweep_pb2.EarlyStopping.values():
        raise FieldError("spec.early_stopping", f"unknown rule {spec.early_stopping}")
    if not 0 <= spec.min_epochs <= 100:
        raise FieldError("spec.min_epochs", f"must be between 1 and 100, got {spec.min_epochs}")
    if spec.reduction_factor and not 2 <= spec.reduction_factor <= 10:
        raise FieldError(
            "spec.reduction_factor", f"must be between 2 and 10, got {spec.reduction_factor}"
        )
    if len(spec.name) > 200:
        raise FieldError("spec.name", "must be at most 200 characters")
    space = spec.space
    for name in NUMERIC:
        if name == "seed" and not space.HasField("seed"):
            continue
        dimension: sweep_pb2.Dimension = getattr(space, name)
        field = f"spec.space.{name}"
        if len(dimension.values) > 1000:
            raise FieldError(field, "at most 1000 values")
        if not dimension.values:
            if not (math.isfinite(dimension.min) and math.isfinite(dimension.max)):
                raise FieldError(field, "needs values, or a finite min and max")
            if dimension.min > dimension.max:
                raise FieldError(field, f"min {dimension.min} is above max {dimension.max}")
            if dimension.log and dimension.min <= 0:
                raise FieldError(field, "a log range needs min > 0")
            if not 0 <= dimension.grid_points <= 100:
                raise FieldError(field, "grid_points must be between 1 and 100")
    for name in CATEGORICAL:
        if len(getattr(space, name)) > 10:
            raise FieldError(f"spec.space.{name}", "at most 10 values")
    # Every corner of the space must be a valid job.
    for corner in itertools.product(*(_extremes(space, n) for n in NUMERIC), *_choices(space)):
        try:
            normalized(_build(dict(zip(NAMES, corner, strict=True))))
        except FieldError as error:
            raise FieldError(f"spec.space.{error.field}", error.rule) from None
    if (
        spec.strategy == sweep_pb2.SEARCH_STRATEGY_GRID
        and math.prod(len(axis) for axis in _grid_axes(space)) > MAX_GRID
    ):
        raise FieldError("spec.space", f"the grid has more than {MAX_GRID} points")


def _extremes(space: sweep_pb2.SearchSpace, name: str) -> list[float]:
    dimension: sweep_pb2.Dimension = getattr(space, name)
    if name == "seed" and not space.HasField("seed"):
        return [0]
    if dimension.values:
        return [min(dimension.values), max(dimension.values)]
    return [dimension.min, dimension.max]


def _choices(space: sweep_pb2.SearchSpace) -> list[list[int]]:
    chosen: list[list[int]] = [[int(v) for v in getattr(space, name)] for name in CATEGORICAL]
    return [c or DEFAULTS[name] for c, name in zip(chosen, CATEGORICAL, strict=True)]


def _build(values: dict[str, float]) -> job_pb2.Hyperparameters:
    return job_pb2.Hyperparameters(
        epochs=round(values["epochs"]),
        learning_rate=float(values["learning_rate"]),
        batch_size=round(values["batch_size"]),
        seed=round(values["seed"]),
        dataset=int(values["dataset"]),  # type: ignore[arg-type]
        model=int(values["model"]),  # type: ignore[arg-type]
        optimizer=int(values["optimizer"]),  # type: ignore[arg-type]
    )


def _grid_points(dimension: sweep_pb2.Dimension, integer: bool) -> list[float]:
    if dimension.values:
        return list(dict.fromkeys(dimension.values))
    n = dimension.grid_points or 3
    if n == 1 or dimension.min == dimension.max:
        return [dimension.min]
    if dimension.log:
        lo, hi = math.log(dimension.min), math.log(dimension.max)
        points = [math.exp(lo + (hi - lo) * i / (n - 1)) for i in range(n)]
    else:
        points = [dimension.min + (dimension.max - dimension.min) * i / (n - 1) for i in range(n)]
    # 10 significant digits: 0.002, not 0.0020000000000000005 (and the same job as a typed 0.002)
    return list(dict.fromkeys(round(p) if integer else float(f"{p:.10g}") for p in points))


def _grid_axes(space: sweep_pb2.SearchSpace) -> list[list[float]]:
    axes: list[list[float]] = []
    for name in NUMERIC:
        if name == "seed" and not space.HasField("seed"):
            axes.append([0])
        else:
            axes.append(_grid_points(getattr(space, name), name in INTEGER))
    return axes + [[float(c) for c in choice] for choice in _choices(space)]


def grid(space: sweep_pb2.SearchSpace) -> list[job_pb2.Hyperparameters]:
    return [
        _build(dict(zip(NAMES, point, strict=True)))
        for point in itertools.product(*_grid_axes(space))
    ]


def budget(spec: sweep_pb2.SweepSpec) -> int:
    if spec.strategy == sweep_pb2.SEARCH_STRATEGY_GRID:
        return min(spec.max_trials, len(grid(spec.space)))
    return spec.max_trials


def _sample(dimension: sweep_pb2.Dimension, integer: bool, rng: random.Random) -> float:
    if dimension.values:
        return rng.choice(list(dimension.values))
    if dimension.log:
        value = math.exp(rng.uniform(math.log(dimension.min), math.log(dimension.max)))
    else:
        value = rng.uniform(dimension.min, dimension.max)
    return round(value) if integer else value


def random_point(spec: sweep_pb2.SweepSpec, number: int) -> job_pb2.Hyperparameters:
    rng = random.Random(f"{spec.sampler_seed}/{number}")
    values: dict[str, float] = {}
    for name in NUMERIC:
        if name == "seed" and not spec.space.HasField("seed"):
            values[name] = 0
        else:
            values[name] = _sample(getattr(spec.space, name), name in INTEGER, rng)
    for (_, field), choice in zip(CATEGORICAL.items(), _choices(spec.space), strict=True):
        values[field] = rng.choice(choice)
    return _build(values)


def tpe_point(
    spec: sweep_pb2.SweepSpec,
    number: int,
    finished: Sequence[Finished],
    pending: Sequence[job_pb2.Hyperparameters] = (),
) -> job_pb2.Hyperparameters:
    """Asks a fresh optuna study, told every finished trial, for the next point.

    The trials still running are told as running: with the constant liar, TPE takes them
    for poor results, so parallel trials spread out instead of repeating each other.
    """
    import optuna  # only sweeps with TPE pay for its import
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions: dict[str, optuna.distributions.BaseDistribution] = {}
    for name in NUMERIC:
        if name == "seed" and not spec.space.HasField("seed"):
            continue
        d: sweep_pb2.Dimension = getattr(spec.space, name)
        if d.values:
            distributions[name] = optuna.distributions.CategoricalDistribution(list(d.values))
        elif name in INTEGER:
            distributions[name] = optuna.distributions.IntDistribution(
                round(d.min), round(d.max), log=d.log
            )
        else:
            distributions[name] = optuna.distributions.FloatDistribution(d.min, d.max, log=d.log)
    for field_name, choice in zip(CATEGORICAL, _choices(spec.space), strict=True):
        distributions[field_name] = optuna.distributions.CategoricalDistribution(choice)
    sampler = optuna.samplers.TPESampler(
        seed=(spec.sampler_seed + number) % 2**32, constant_liar=True
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    told = [
        optuna.trial.create_trial(
            params={n: _param(trial.hyperparameters, n) for n in distributions},
            distributions=distributions,
            value=trial.accuracy,
            state=TrialState.FAIL if trial.accuracy is None else TrialState.COMPLETE,
        )
        for trial in finished
    ]
    told += [
        optuna.trial.create_trial(
            params={n: _param(hp, n) for n in distributions},
            distributions=distributions,
            state=TrialState.RUNNING,
        )
        for hp in pending
    ]
    study.add_trials(told)
    asked = study.ask(distributions)
    values = {n: float(v) for n, v in asked.params.items()}
    values.setdefault("seed", 0)
    for field_name, field in CATEGORICAL.items():
        values[field] = values.pop(field_name)
    return _build(values)


def _param(hp: job_pb2.Hyperparameters, name: str) -> float:
    return float(getattr(hp, CATEGORICAL.get(name, name)))


def cost(hp: job_pb2.Hyperparameters) -> float:
    """A trial's training time, up to a factor: epochs x model x (1 + step cost / batch)."""
    return hp.epochs * MODEL_COST.get(hp.model, 1.0) * (1 + STEP_SAMPLES / max(1, hp.batch_size))


def _key(hp: job_pb2.Hyperparameters) -> bytes:
    return normalized(hp).SerializeToString(deterministic=True)


@functools.lru_cache(maxsize=64)
def _planned(spec_bytes: bytes) -> tuple[tuple[bytes, job_pb2.Hyperparameters], ...]:
    """A grid or random sweep's points, its whole budget of them, the costliest first (ties in
    the order drawn), each with its `_key`. Read only: next_point hands out copies."""
    spec = sweep_pb2.SweepSpec.FromString(spec_bytes)
    if spec.strategy == sweep_pb2.SEARCH_STRATEGY_GRID:
        points = grid(spec.space)[: budget(spec)]
    else:
        points = [random_point(spec, n) for n in range(budget(spec))]
    return tuple((_key(p), p) for p in sorted(points, key=cost, reverse=True))


def next_point(
    spec: sweep_pb2.SweepSpec,
    number: int,
    finished: Sequence[Finished],
    pending: Sequence[job_pb2.Hyperparameters] = (),
) -> job_pb2.Hyperparameters:
    """The next trial's hyperparameters, trial `number` (0-based) of a sweep whose trials
    so far are `finished` and `pending` (those still running).

    A grid or random sweep runs the same points as drawn, in another order: the costliest
    not yet among `finished` and `pending` first (so one stopped early ran its costliest).
    Two trainers then end a sweep about together, not one idle while the other runs a long
    trial begun last; and the order depends only on what is stored, so a sweep begun in draw
    order goes on with the rest.
    """
    if spec.strategy == sweep_pb2.SEARCH_STRATEGY_TPE:
        return tpe_point(spec, number, finished, pending)
    planned = _planned(spec.SerializeToString(deterministic=True))
    taken = Counter(_key(hp) for hp in [*(f.hyperparameters for f in finished), *pending])
    for key, point in planned:
        if taken[key]:
            taken[key] -= 1
            continue
        out = job_pb2.Hyperparameters()
        out.CopyFrom(point)
        return out
    raise IndexError(f"trial {number} is past the budget of {len(planned)}")
