"""Hyperparameters: defaults, validation rules and the canonical dedup key."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

from tuner.v1 import job_pb2

MAX_SEED = 2**63 - 1

DATASETS = {"mnist": job_pb2.DATASET_MNIST, "fashion-mnist": job_pb2.DATASET_FASHION_MNIST}
MODELS = {"cnn": job_pb2.MODEL_CNN, "mlp": job_pb2.MODEL_MLP}
OPTIMIZERS = {
    "sgd": job_pb2.OPTIMIZER_SGD,
    "adam": job_pb2.OPTIMIZER_ADAM,
    "adadelta": job_pb2.OPTIMIZER_ADADELTA,
}

DEFAULT_DATASET = "mnist"
DEFAULT_MODEL = "cnn"
DEFAULT_OPTIMIZER = "adam"


@dataclass(frozen=True)
class FieldError(ValueError):
    """A hyperparameter broke a rule; `field` is its name in the API."""

    field: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


def name_of(names: Mapping[str, int], value: int) -> str:
    """The command-line name of an enum value ('mnist' for DATASET_MNIST)."""
    for name, number in names.items():
        if number == value:
            return name
    raise KeyError(value)


def check_epochs(value: int) -> None:
    if not 1 <= value <= 100:
        raise FieldError("epochs", f"must be between 1 and 100, got {value}")


def check_learning_rate(value: float) -> None:
    if not math.isfinite(value) or not 0 < value <= 10:
        raise FieldError("learning_rate", f"must be a finite number in (0, 10], got {value}")


def check_batch_size(value: int) -> None:
    if not 1 <= value <= 8192:
        raise FieldError("batch_size", f"must be between 1 and 8192, got {value}")


def check_seed(value: int) -> None:
    if not 0 <= value <= MAX_SEED:
        raise FieldError("seed", f"must be between 0 and 2^63-1, got {value}")


def _check_enum(field: str, names: Mapping[str, int], value: int) -> None:
    if value not in names.values():
        known = ", ".join(names)
        raise FieldError(field, f"must be one of {known}, got enum value {value}")


def normalized(hp: job_pb2.Hyperparameters) -> job_pb2.Hyperparameters:
    """A validated copy with defaults filled in; raises FieldError on the first bad field."""
    out = job_pb2.Hyperparameters()
    out.CopyFrom(hp)
    if out.dataset == job_pb2.DATASET_UNSPECIFIED:
        out.dataset = DATASETS[DEFAULT_DATASET]
    if out.model == job_pb2.MODEL_UNSPECIFIED:
        out.model = MODELS[DEFAULT_MODEL]
    if out.optimizer == job_pb2.OPTIMIZER_UNSPECIFIED:
        out.optimizer = OPTIMIZERS[DEFAULT_OPTIMIZER]
    check_epochs(out.epochs)
    check_learning_rate(out.learning_rate)
    check_batch_size(out.batch_size)
    _check_enum("dataset", DATASETS, out.dataset)
    _check_enum("model", MODELS, out.model)
    _check_enum("optimizer", OPTIMIZERS, out.optimizer)
    check_seed(out.seed)
    return out


def canonical_key(hp: job_pb2.Hyperparameters) -> str:
    """One string per configuration: field order and float spelling do not matter.

    `hp` must be normalized. repr() of a float is its shortest round-trip form, so
    0.1, 1e-1 and 0.10 give the same text while any two different doubles differ.
    """
    return ";".join(
        [
            f"dataset={name_of(DATASETS, hp.dataset)}",
            f"model={name_of(MODELS, hp.model)}",
            f"optimizer={name_of(OPTIMIZERS, hp.optimizer)}",
            f"epochs={hp.epochs}",
            f"learning_rate={float(hp.learning_rate)!r}",
            f"batch_size={hp.batch_size}",
            f"seed={hp.seed}",
        ]
    )


def job_id(key: str) -> str:
    """The job id of a configuration: 128 bits of the key's SHA-256, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def lineage(hp: job_pb2.Hyperparameters) -> str:
    """The configuration but its epochs: jobs of one lineage share their first epochs.

    Epoch k of a run does not depend on how many epochs follow it, so a job continues
    from the checkpoint of any job of its lineage that got at least as far.
    """
    prefix = job_pb2.Hyperparameters()
    prefix.CopyFrom(hp)
    prefix.epochs = 0
    return job_id(canonical_key(prefix))


def named(hp: job_pb2.Hyperparameters) -> dict[str, int | float | str]:
    """The hyperparameters by field, the enums by their names: as stored, exported, shown."""
    return {
        "epochs": hp.epochs,
        "learning_rate": hp.learning_rate,
        "batch_size": hp.batch_size,
        "dataset": name_of(DATASETS, hp.dataset),
        "model": name_of(MODELS, hp.model),
        "optimizer": name_of(OPTIMIZERS, hp.optimizer),
        "seed": hp.seed,
    }


def describe(hp: job_pb2.Hyperparameters) -> str:
    """A short human description, e.g. 'mlp/adam mnist e=1 lr=0.001 bs=64 seed=0'."""
    return (
        f"{name_of(MODELS, hp.model)}/{name_of(OPTIMIZERS, hp.optimizer)} "
        f"{name_of(DATASETS, hp.dataset)} e={hp.epochs} lr={hp.learning_rate:g} "
        f"bs={hp.batch_size} seed={hp.seed}"
    )
