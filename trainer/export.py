"""A job's final model in its two formats: the weights (state dict) and a torch.export program.

The program needs nothing of this project to run: `torch.export.load(f).module()` takes
images as float tensors in [0, 1] of shape (N, 1, 28, 28), normalizes them as the job's data
set was, and returns log-probabilities of shape (N, 10).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from trainer import models

log = logging.getLogger(__name__)

WEIGHTS_DIR = "data/weights/"
WEIGHTS_CONFIG = f"{WEIGHTS_DIR}model_weights_config.json"
ZIP_MIN_VERSION = 6  # what torch.export.save's writer asks for


class Normalized(nn.Module):
    """The data set's normalization, then the network: what a job's network saw in training."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, network: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # The same operations, in the same order, as trainer/data.py applies: the same bits.
        result: torch.Tensor = self.network((images - self.mean) / self.std)
        return result


def cpu_weights(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights on the CPU, in the default memory layout (the CNN trains channels-last)."""
    return {name: value.detach().cpu().contiguous() for name, value in weights.items()}


def state_dict_bytes(weights: dict[str, torch.Tensor]) -> bytes:
    """torch.save of the weights: load them into trainer.models.build(model) (or the same
    torch.nn layers) with load_state_dict."""
    buffer = io.BytesIO()
    torch.save(cpu_weights(weights), buffer)
    return buffer.getvalue()


def exported_bytes(model: int, weights: dict[str, torch.Tensor], mean: float, std: float) -> bytes:
    """torch.export.save of the normalizing network, in eval mode, any batch size, on the CPU.

    Exporting traces the network: ~0.2 s a job (2 s the first time in a process), and saving
    serializes its graph: ~25 ms. Both depend only on the model and the normalization, so
    each pair is traced and saved once, and each job's archive is that one with the job's
    weights in its weight records: a few ms.
    """
    with _lock:
        key = (model, mean, std)
        program = _programs.get(key)
        if program is None:
            program = _programs[key] = _trace(model, mean, std)
            _archives[key] = Archive.of(program)  # None: each job saves
        with torch.no_grad():
            for name, value in cpu_weights(weights).items():
                program.state_dict[f"network.{name}"].copy_(value)
        archive = _archives[key]
        if archive is None:
            return _saved(program)
        return archive.with_weights(program.state_dict)


_lock = threading.Lock()
_programs: dict[tuple[int, float, float], torch.export.ExportedProgram] = {}
_archives: dict[tuple[int, float, float], Archive | None] = {}


def _saved(program: torch.export.ExportedProgram) -> bytes:
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class Archive:
    """torch.export.save's archive of one program, its records in order, to be written again
    with other weights: the weight records hold each tensor's raw bytes, nothing else does."""

    records: tuple[tuple[str, bytes], ...]  # the writer's own (.data/...) left out
    weights: dict[str, str]  # record name -> the state dict entry it holds

    @staticmethod
    def of(program: torch.export.ExportedProgram) -> Archive | None:
        """The program's archive, or None where writing it again would not give what
        torch.export.save gives (a torch whose format differs)."""
        try:
            return Archive._read(program)
        except Exception:
            log.exception("torch.export.save's archive could not be read: each job saves")
            return None

    @staticmethod
    def _read(program: torch.export.ExportedProgram) -> Archive | None:
        saved = _saved(program)
        with zipfile.ZipFile(io.BytesIO(saved)) as archive:
            entries = [(info.filename.partition("/")[2], archive.read(info)) for info in
                       archive.infolist()]  # fmt: skip
        records = dict(entries)
        config = json.loads(records.get(WEIGHTS_CONFIG, b"{}")).get("config", {})
        weights = {f"{WEIGHTS_DIR}{meta['path_name']}": fqn for fqn, meta in config.items()}
        if len(weights) != len(config) or any(m["use_pickle"] for m in config.values()):
            return None  # tensors sharing a record, or pickled: not raw bytes
        kept = tuple((name, data) for name, data in entries if not name.startswith(".data/"))
        made = Archive(kept, weights)
        if _without_id(made.with_weights(program.state_dict)) != _without_id(saved):
            log.warning("torch.export.save writes another archive: each job's model is saved")
            return None
        return made

    def with_weights(self, state_dict: Mapping[str, torch.Tensor]) -> bytes:
        buffer = io.BytesIO()
        writer = torch._C.PyTorchFileWriter(buffer)
        writer.set_min_version(ZIP_MIN_VERSION)
        for name, data in self.records:
            if (fqn := self.weights.get(name)) is not None:
                data = raw_bytes(state_dict[fqn])
            writer.write_record(name, data, len(data))
        writer.write_end_of_file()
        return buffer.getvalue()


def raw_bytes(tensor: torch.Tensor) -> bytes:
    """The tensor's storage, as the archive holds it."""
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _without_id(archive: bytes) -> dict[str, bytes]:
    """The archive's records, but the random id each writing gives it."""
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {i.filename: opened.read(i) for i in opened.infolist() if
                not i.filename.endswith("/.data/serialization_id")}  # fmt: skip


def _trace(model: int, mean: float, std: float) -> torch.export.ExportedProgram:
    with torch.random.fork_rng(devices=[]):  # the network's initial weights, the example
        network = models.build(model)
        example = torch.rand(2, 1, 28, 28)
    module = Normalized(network, mean, std).eval()
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        return torch.export.export(module, (example,), dynamic_shapes={"images": {0: batch}})
