"""Session fixtures: real MNIST files and real servers (nats-server, SecantusDB, services).

Only fixtures live here; what tests import is in tests/support/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import MNIST_FILES, RunningStack, StartStack, mnist_source, start_stack
from tuner.stack import Stack


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder laid out as torchvision's root, its MNIST linked to the read-only originals."""
    source = mnist_source()
    missing = [name for name in MNIST_FILES if not (source / name).exists()]
    if missing:
        pytest.fail(f"MNIST files missing in {source}: {', '.join(missing)}")
    root = tmp_path_factory.mktemp("data")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        (raw / name).symlink_to(source / name)
    return root


@pytest.fixture(scope="session")
def running_stack(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> Iterator[RunningStack]:
    """One stack for the session; tests keep apart by using their own seeds."""
    running = start_stack(tmp_path_factory.mktemp("stack"), data_dir)
    try:
        yield running
    finally:
        running.stack.stop()


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SecantusDB server of its own, in memory, for store tests."""
    stack = Stack(tmp_path_factory.mktemp("mongo"))
    try:
        yield stack.start_mongo(in_memory=True)
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server with JetStream of its own, for unit tests of what publishes and consumes."""
    stack = Stack(tmp_path_factory.mktemp("nats"))
    try:
        yield stack.start_nats()
    finally:
        stack.stop()


@pytest.fixture
def own_stack(tmp_path: Path, data_dir: Path) -> Iterator[StartStack]:
    """For tests that break their stack: starts one with the given trainers and environment."""
    started: list[RunningStack] = []

    def start(trainers: int = 1, **env: Any) -> RunningStack:
        running = start_stack(tmp_path / f"stack{len(started)}", data_dir, trainers, **env)
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.stack.stop()
