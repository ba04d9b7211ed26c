"""Hyperparameter builders: a quick MLP job, a CNN one, and a request with the defaults unfilled."""

from __future__ import annotations

from typing import Any

from tuner.v1 import job_pb2


def mlp(seed: int = 0, **fields: Any) -> job_pb2.Hyperparameters:
    """An MLP trained with Adam on MNIST for one epoch (lr 0.001, batch 64); `fields` override."""
    values: dict[str, Any] = {
        "epochs": 1,
        "learning_rate": 0.001,
        "batch_size": 64,
        "dataset": job_pb2.DATASET_MNIST,
        "model": job_pb2.MODEL_MLP,
        "optimizer": job_pb2.OPTIMIZER_ADAM,
        "seed": seed,
    }
    values.update(fields)
    return job_pb2.Hyperparameters(**values)


def cnn(seed: int, **fields: Any) -> job_pb2.Hyperparameters:
    """The same with the CNN, in batches of 32."""
    return mlp(seed, **{"model": job_pb2.MODEL_CNN, "batch_size": 32, **fields})


def unfilled(**fields: Any) -> job_pb2.Hyperparameters:
    """Only what a client must send (epochs, learning rate, batch size): the rest is defaulted."""
    values: dict[str, Any] = {"epochs": 1, "learning_rate": 0.01, "batch_size": 64}
    values.update(fields)
    return job_pb2.Hyperparameters(**values)
