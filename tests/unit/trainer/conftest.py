"""The trainer tests' MNIST, loaded once per module onto the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainer import data
from tuner.v1 import job_pb2


@pytest.fixture(scope="module")
def mnist(data_dir: Path) -> data.Dataset:
    return data.load(job_pb2.DATASET_MNIST, data_dir, torch.device("cpu"))
