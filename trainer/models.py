"""The networks a job can train, built from the Model enum."""

from __future__ import annotations

from torch import nn

from tuner.v1 import job_pb2


def cnn() -> nn.Module:
    """The classic PyTorch MNIST example: two conv layers, max-pool, two dense layers."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(9216, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
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
