"""The networks a job can train, built from the Model enum."""

from __future__ import annotations

import torch
from torch import nn

from tuner.v1 import job_pb2


class Dropout(nn.Dropout):
    """nn.Dropout, its mask drawn with torch.rand on a CPU: the same distribution.

    There bernoulli_ takes twice as long, which made a tenth of the CNN's training step on
    2 cores. Elsewhere it is nn.Dropout (CUDA has a fused kernel).
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or input.device.type != "cpu":
            return super().forward(input)
        return input * ((torch.rand_like(input) >= self.p) * (1 / (1 - self.p)))


def cnn() -> nn.Module:
    """The classic PyTorch MNIST example: two conv layers, max-pool, two dense layers.

    The example's ReLU before the max-pool comes after it here: max commutes with ReLU, so
    outputs and gradients are the same, bit for bit, and the ReLU sees a quarter of the
    values (a fifth less training time on a CPU). The parameters keep their names.
    """
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, 1),
        nn.MaxPool2d(2),
        nn.ReLU(),
        Dropout(0.25),
        nn.Flatten(),
        nn.Linear(9216, 128),
        nn.ReLU(),
        Dropout(0.5),
        nn.Linear(128, 10),
        nn.LogSoftmax(dim=1),
    )


def mlp() -> nn.Module:
    """Two hidden fully connected layers, 784 -> 256 -> 128 -> 10."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
        nn.LogSoftmax(dim=1),
    )


def build(model: int) -> nn.Module:
    """A freshly initialised network (log-probabilities out) for a job_pb2 Model value."""
    if model == job_pb2.MODEL_CNN:
        return cnn()
    if model == job_pb2.MODEL_MLP:
        return mlp()
    raise ValueError(f"unknown model enum value {model}")
