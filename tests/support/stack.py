"""A real stack for tests: nats-server, SecantusDB, the scheduler and trainers, on free ports."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymongo

from tuner.stack import Stack

REPO = Path(__file__).resolve().parents[2]
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def mnist_source() -> Path:
    """The original MNIST files: TUNER_TEST_MNIST, else ../shared/data/mnist beside the repo."""
    return Path(os.environ.get("TUNER_TEST_MNIST") or REPO.parent / "shared" / "data" / "mnist")


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


def mongo_client(uri: str) -> pymongo.MongoClient[dict[str, Any]]:
    """A plain client of a stack's database, to look at what is stored."""
    return pymongo.MongoClient(uri)


# What the own_stack fixture gives: start(trainers=1, **environment) -> RunningStack.
StartStack = Callable[..., RunningStack]
