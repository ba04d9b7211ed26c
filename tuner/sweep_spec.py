"""Sweep spec files (YAML) for `tuner sweep create`, read into a SweepSpec.

name: lr-search
strategy: random          # grid | random | tpe
max_trials: 8
parallelism: 2
early_stopping: asha      # none | median | asha
min_epochs: 1             # first ASHA rung / median rule start
reduction_factor: 3       # ASHA
sampler_seed: 0
space:
  epochs: [3]                                   # a list of values...
  learning_rate: {min: 0.0001, max: 0.1, log: true, grid_points: 4}   # ...or a range
  batch_size: [64, 128]
  models: [mlp]                                 # names, as the CLI spells them
  optimizers: [adam, sgd]
  datasets: [mnist]
  seed: [0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from tuner.core.hyperparameters import DATASETS, MODELS, OPTIMIZERS
from tuner.v1 import sweep_pb2

STRATEGIES = {
    "grid": sweep_pb2.SEARCH_STRATEGY_GRID,
    "random": sweep_pb2.SEARCH_STRATEGY_RANDOM,
    "tpe": sweep_pb2.SEARCH_STRATEGY_TPE,
}
RULES = {
    "none": sweep_pb2.EARLY_STOPPING_NONE,
    "median": sweep_pb2.EARLY_STOPPING_MEDIAN,
    "asha": sweep_pb2.EARLY_STOPPING_ASHA,
}
NUMBERS = ("max_trials", "parallelism", "min_epochs", "reduction_factor", "sampler_seed")
DIMENSIONS = ("epochs", "learning_rate", "batch_size", "seed")
CHOICES: dict[str, Mapping[str, int]] = {
    "datasets": DATASETS,
    "models": MODELS,
    "optimizers": OPTIMIZERS,
}


class SpecError(ValueError):
    """The spec file is wrong; the message says where."""


def _pick(names: Mapping[str, int], value: Any, where: str) -> int:
    if value not in names:
        raise SpecError(f"{where}: {value!r} is not one of {', '.join(names)}")
    return names[value]


def _dimension(value: Any, where: str) -> sweep_pb2.Dimension:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, list):
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise SpecError(f"{where}: values must be numbers")
        return sweep_pb2.Dimension(values=value)
    if isinstance(value, dict):
        unknown = set(value) - {"min", "max", "log", "grid_points"}
        if unknown or not {"min", "max"} <= set(value):
            raise SpecError(f"{where}: a range is {{min, max, log?, grid_points?}}")
        try:
            return sweep_pb2.Dimension(**value)
        except (TypeError, ValueError) as error:
            raise SpecError(f"{where}: {error}") from None
    raise SpecError(f"{where}: give a list of values or a {{min, max}} range")


def parse(text: str) -> sweep_pb2.SweepSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpecError(f"not YAML: {error}") from None
    if not isinstance(data, dict):
        raise SpecError("a spec is a mapping: name, strategy, max_trials, space, ...")
    known = {"name", "strategy", "early_stopping", "space", *NUMBERS}
    if unknown := set(data) - known:
        raise SpecError(f"unknown keys: {', '.join(sorted(unknown))}")
    spec = sweep_pb2.SweepSpec(name=str(data.get("name", "")))
    spec.strategy = _pick(STRATEGIES, data.get("strategy", "random"), "strategy")  # type: ignore[assignment]
    spec.early_stopping = _pick(RULES, data.get("early_stopping", "none"), "early_stopping")  # type: ignore[assignment]
    for key in NUMBERS:
        if key in data:
            if not isinstance(data[key], int) or isinstance(data[key], bool):
                raise SpecError(f"{key}: must be a whole number")
            setattr(spec, key, data[key])
    space = data.get("space")
    if not isinstance(space, dict):
        raise SpecError("space: a mapping of hyperparameters to values or ranges")
    if unknown := set(space) - set(DIMENSIONS) - set(CHOICES):
        raise SpecError(f"space: unknown keys: {', '.join(sorted(unknown))}")
    for key in DIMENSIONS:
        if key in space:
            getattr(spec.space, key).CopyFrom(_dimension(space[key], f"space.{key}"))
    for key, names in CHOICES.items():
        values = space.get(key, [])
        values = values if isinstance(values, list) else [values]
        getattr(spec.space, key).extend(_pick(names, v, f"space.{key}") for v in values)
    return spec
