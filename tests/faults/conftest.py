"""Fault tests get a stack of their own, since they break it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningStack, start_stack

StartStack = Callable[..., RunningStack]


@pytest.fixture
def own_stack(tmp_path: Path, data_dir: Path) -> Iterator[StartStack]:
    """Starts a stack with the given trainers and environment; stops it after the test."""
    started: list[RunningStack] = []

    def start(trainers: int = 1, **env: str) -> RunningStack:
        running = start_stack(tmp_path / f"stack{len(started)}", data_dir, trainers, **env)
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.stack.stop()
