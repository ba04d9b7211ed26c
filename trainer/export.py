"""A job's final model in its two formats: the weights (state dict) and a torch.export program.

The program needs nothing of this project to run: `torch.export.load(f).module()` takes
images as float tensors in [0, 1] of shape (N, 1, 28, 28), normalizes them as the job's data
set was, and returns log-probabilities of shape (N, 10).
"""

from __future__ import annotations

import io
import threading

import torch
from torch import nn

from trainer import models


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

    Exporting traces the network: ~0.2 s a job (2 s the first time in a process). The
    graph depends only on the model and the normalization, so it is traced once per pair
    and each job's program is that one with the job's weights copied in: ~20 ms.
    """
    with _lock:
        program = _programs.get((model, mean, std))
        if program is None:
            program = _programs[(model, mean, std)] = _trace(model, mean, std)
        with torch.no_grad():
            for name, value in cpu_weights(weights).items():
                program.state_dict[f"network.{name}"].copy_(value)
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        return buffer.getvalue()


_lock = threading.Lock()
_programs: dict[tuple[int, float, float], torch.export.ExportedProgram] = {}


def _trace(model: int, mean: float, std: float) -> torch.export.ExportedProgram:
    with torch.random.fork_rng(devices=[]):  # the network's initial weights, the example
        network = models.build(model)
        example = torch.rand(2, 1, 28, 28)
    module = Normalized(network, mean, std).eval()
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        return torch.export.export(module, (example,), dynamic_shapes={"images": {0: batch}})
