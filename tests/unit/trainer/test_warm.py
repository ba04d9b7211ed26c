"""The warm-up at a trainer's start: data sets in the cache, a missing one only a warning."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from trainer.data import DataCache
from trainer.warm import Warmed, warm_up
from tuner.v1 import job_pb2

CPU = torch.device("cpu")


@pytest.fixture
def short_socket_timeout() -> Iterator[None]:
    """A download attempt must fail, not hang, where there is no network."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def test_the_warm_data_set_is_in_the_cache_and_each_model_ran(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = DataCache(data_dir)
    caplog.set_level(logging.INFO)

    warmed = warm_up(("mnist",), cache, CPU, should_stop=lambda: False)

    assert (warmed.datasets, warmed.missing) == (("mnist",), ())
    assert cache.holds(job_pb2.DATASET_MNIST, CPU)
    assert not cache.holds(job_pb2.DATASET_FASHION_MNIST, CPU)
    assert str(warmed) == f"warmed mnist in {warmed.seconds:.1f} s"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # The cache says what loading took, once.
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == ["mnist loaded onto cpu"]


@pytest.mark.usefixtures("short_socket_timeout")
def test_a_missing_data_set_is_one_warning_and_the_trainer_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = DataCache(tmp_path)

    warmed = warm_up(("mnist",), empty, CPU, should_stop=lambda: False)

    assert (warmed.datasets, warmed.missing) == ((), ("mnist",))
    assert str(warmed).startswith("warmed nothing in ")
    assert str(warmed).endswith("; not loaded: mnist")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("warm-up: mnist not found: put train-images-idx3-ubyte.gz")
    assert "\n" not in warnings[0]
    assert not empty.holds(job_pb2.DATASET_MNIST, CPU)


def test_nothing_to_warm_and_a_stop_before_the_first_load() -> None:
    cache = DataCache(Path("/nonexistent"))
    assert str(warm_up((), cache, CPU, should_stop=lambda: False)) == "nothing to warm"
    started = time.monotonic()
    stopped = warm_up(("mnist", "fashion-mnist"), cache, CPU, should_stop=lambda: True)
    assert stopped == Warmed((), (), stopped.seconds)
    assert time.monotonic() - started < 1
