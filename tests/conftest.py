"""Session fixtures: real MNIST files and a real stack (nats-server, SecantusDB, services)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tuner.stack import Stack

REPO = Path(__file__).resolve().parents[1]
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def mnist_source() -> Path:
    """The original MNIST files: TUNER_TEST_MNIST, else ../shared/data/mnist beside the repo."""
    return Path(os.environ.get("TUNER_TEST_MNIST") or REPO.parent / "shared" / "data" / "mnist")


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


@dataclass
class RunningStack:
    stack: Stack
    address: str
    mongo_uri: str
    nats_url: str

    def log(self, name: str) -> str:
        return self.stack.log_path(name).read_text(errors="replace")


def start_stack(
    state_dir: Path,
    data_dir: Path,
    trainers: int = 1,
    nats_user: str = "",
    nats_password: str = "",
    db_in_memory: bool = True,
    **env: str,
) -> RunningStack:
    stack = Stack(state_dir)
    stack.env.update(TUNER_DATA_DIR=str(data_dir), TUNER_DEVICE="cpu", **env)
    stack.env.pop("TUNER_NATS_URL", None)
    stack.env.pop("TUNER_MONGO_URI", None)
    try:
        nats_url = stack.start_nats(user=nats_user, password=nats_password)
        mongo_uri = stack.start_mongo(in_memory=db_in_memory)
        address = stack.start_scheduler()
        threads = max(1, (os.cpu_count() or 1) // max(trainers, 1))
        for index in range(1, trainers + 1):
            stack.start_trainer(index, threads)
    except BaseException:
        stack.stop()
        raise
    return RunningStack(stack, address, mongo_uri, nats_url)


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


StartStack = Callable[..., RunningStack]


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
