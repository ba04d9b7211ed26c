"""Warm-up at a trainer's start: data sets loaded and torch run once per model, before any job."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from trainer import models
from trainer.data import DataCache, Dataset, DatasetMissing, Split
from trainer.export import exported_bytes
from trainer.training import train
from tuner.core.hyperparameters import DATASETS, MODELS
from tuner.v1 import job_pb2

log = logging.getLogger(__name__)

SAMPLES = 64  # one training step and one evaluation pass of each model


@dataclass(frozen=True)
class Warmed:
    datasets: tuple[str, ...]  # those now in the cache
    missing: tuple[str, ...]  # those that could not be loaded: a job that needs one fails
    seconds: float

    def __str__(self) -> str:
        if not self.datasets and not self.missing:
            return "nothing to warm"
        done = f"warmed {', '.join(self.datasets) or 'nothing'} in {self.seconds:.1f} s"
        return done + (f"; not loaded: {', '.join(self.missing)}" if self.missing else "")


def _sample(data: Dataset) -> Dataset:
    """The first few images of each split: shaped and placed as a job's are."""
    train_split, test_split = data.train, data.test
    return Dataset(
        Split(train_split.images[:SAMPLES], train_split.labels[:SAMPLES]),
        Split(test_split.images[:SAMPLES], test_split.labels[:SAMPLES]),
    )


def _run_once(model: job_pb2.Model, sample: Dataset, device: torch.device) -> None:
    """One step of a job's own training code: build, forward, backward, optimizer, evaluation."""
    hp = job_pb2.Hyperparameters(
        model=model,
        optimizer=job_pb2.OPTIMIZER_ADAM,
        learning_rate=0.001,
        batch_size=SAMPLES,
        epochs=1,
    )
    train(hp, sample, device, lambda _: None, lambda _: None, should_stop=lambda: False)


def _export_once(model: job_pb2.Model, data: Dataset) -> None:
    """Trace the final model's program, which each job's export then reuses."""
    with torch.random.fork_rng(devices=[]):
        weights = models.build(model).state_dict()
    exported_bytes(model, weights, data.mean, data.std)


def warm_up(
    names: Sequence[str],
    cache: DataCache,
    device: torch.device,
    should_stop: Callable[[], bool],
) -> Warmed:
    """Load each named data set into the cache, then run each model once on the first of them.

    Runs in a thread; `should_stop` is asked between steps, so a stop waits for one step at
    most. A data set that cannot be loaded costs a warning line: the job that needs it fails.
    """
    started = time.perf_counter()
    loaded: list[str] = []
    missing: list[str] = []
    first: Dataset | None = None
    for name in names:
        if should_stop():
            break
        try:
            data = cache.get(DATASETS[name], device)
        except DatasetMissing as error:
            log.warning("warm-up: %s", error)
            missing.append(name)
            continue
        except Exception as error:  # a damaged file: the job that needs it fails the same way
            log.warning("warm-up: %s not loaded: %r", name, error)
            missing.append(name)
            continue
        loaded.append(name)
        if first is None:
            first = data
    if first is not None:
        sample = _sample(first)
        for model_name, model in MODELS.items():
            if should_stop():
                break
            try:
                _run_once(model, sample, device)
                _export_once(model, first)
            except Exception as error:  # only the first job's speed is at stake
                log.warning("warm-up: the %s did not run: %r", model_name, error)
    return Warmed(tuple(loaded), tuple(missing), time.perf_counter() - started)
