"""A job's exported program: torch.export.save's archive, written again with the job's weights."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch

from trainer import export, models
from tuner.v1 import job_pb2

MEAN, STD = 0.1307, 0.3081


def random_weights(model: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = models.build(model).state_dict()
    return {name: torch.randn(value.shape, generator=generator) for name, value in shapes.items()}


def records(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {i.filename: opened.read(i) for i in opened.infolist()}


def predicts_as_its_network(archive: bytes, model: int, weights: dict[str, torch.Tensor]) -> None:
    program = torch.export.load(io.BytesIO(archive)).module()
    network = models.build(model)
    network.load_state_dict(weights)
    network.eval()
    images = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(program(images), network((images - MEAN) / STD))


@pytest.mark.parametrize("model", [job_pb2.MODEL_MLP, job_pb2.MODEL_CNN])
def test_each_jobs_archive_is_what_torch_export_save_writes_with_its_weights(model: int) -> None:
    for seed in (1, 2):  # the second reuses the first's trace and archive
        weights = random_weights(model, seed)
        archive = export.exported_bytes(model, weights, MEAN, STD)
        program = export._programs[(model, MEAN, STD)]
        assert export._archives[(model, MEAN, STD)] is not None
        saved = records(export._saved(program))
        got = records(archive)
        assert got.keys() == saved.keys()
        differ = [name for name in saved if got[name] != saved[name]]
        assert differ == ["archive/.data/serialization_id"]  # random in each writing
        predicts_as_its_network(archive, model, weights)


def test_an_archive_that_would_not_be_torchs_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    model, mean = job_pb2.MODEL_MLP, 0.5  # a normalization of its own: a trace of its own
    monkeypatch.setattr(export, "raw_bytes", lambda tensor: b"\0" * tensor.nbytes)
    weights = random_weights(model, 3)
    archive = export.exported_bytes(model, weights, mean, STD)
    assert export._archives[(model, mean, STD)] is None
    program = torch.export.load(io.BytesIO(archive)).module()
    network = models.build(model)
    network.load_state_dict(weights)
    network.eval()
    images = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(program(images), network((images - mean) / STD))
