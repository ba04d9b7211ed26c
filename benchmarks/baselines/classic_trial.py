"""The classic trial: torchvision data set, DataLoader, train an epoch, test with a DataLoader.

Row 1 measures it against the trainer; row 6's Optuna and Ray Tune sweeps run it as their
trial. Everything is built inside the trial, as a tuning script's objective does: the data
sets, the loaders, the network, the optimizer. torch is imported here only when a trial runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.common import Json

# Row 6's search space, as the tuner sweep, the Optuna objective and the Ray Tune space say it.
LEARNING_RATES = (1e-4, 1e-1)  # log-uniform
BATCH_SIZES = (64, 128, 256)
OPTIMIZERS = ("adam", "sgd")
# The per-dataset constants the classic examples hard-code for Normalize.
NORMALIZE = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}


def prepare(dataset: str, root: Path) -> None:
    """Extract the .gz files once, untimed, through the trainer's loader (torchvision's
    MNIST reads only the extracted files without download=True)."""
    import torch

    from trainer import data
    from tuner.v1 import job_pb2

    enum = job_pb2.Dataset.Value("DATASET_" + dataset.upper().replace("-", "_"))
    data.load(enum, root, torch.device("cpu"))


def classic_network(model: str) -> Any:
    """The network as the PyTorch MNIST example writes it (ReLU before the max-pool), its
    parameters created in the same order as trainer/models.py's; the MLP is the trainer's.

    Its dropout is the trainer's (the mask from torch.rand, the same distribution): a seed then
    draws the same masks both ways (and, trainer/training.batch_order, the same batches), so
    one CNN run each way compares accuracy; the speed-up leaves that lever out (~9% of a step).
    """
    from torch import nn

    from trainer import models

    if model == "mlp":
        return models.mlp()
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        models.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(9216, 128),
        nn.ReLU(),
        models.Dropout(0.5),
        nn.Linear(128, 10),
        nn.LogSoftmax(dim=1),
    )


def optimizer_for(name: str, parameters: Any, learning_rate: float) -> Any:
    """SGD with momentum 0.9, as the trainer's (trainer/training.make_optimizer); Adam plain."""
    import torch

    if name == "sgd":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=0.9)
    return torch.optim.Adam(parameters, lr=learning_rate)


def run(
    dataset: str,
    model: str,
    root: Path,
    seed: int,
    learning_rate: float,
    batch_size: int,
    optimizer_name: str = "adam",
) -> Json:
    """One epoch and a test pass; times (s), accuracy (0..1) and the torch threads it ran with."""
    import torch
    from torch.nn import functional
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    kind: Any = datasets.MNIST if dataset == "mnist" else datasets.FashionMNIST
    mean, std = NORMALIZE[dataset]
    started, cpu = time.perf_counter(), time.process_time()
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    train_set = kind(root, train=True, download=False, transform=transform)
    test_set = kind(root, train=False, download=False, transform=transform)
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator)
    test_loader = DataLoader(test_set, batch_size=1000)
    torch.manual_seed(seed)
    network = classic_network(model)
    optimizer = optimizer_for(optimizer_name, network.parameters(), learning_rate)
    training = time.perf_counter()
    network.train()
    for images, labels in train_loader:
        optimizer.zero_grad()
        loss = functional.nll_loss(network(images), labels)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    evaluating = time.perf_counter()
    network.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in test_loader:
            correct += int((network(images).argmax(dim=1) == labels).sum().item())
    ended = time.perf_counter()
    return {
        "prepare_s": training - started,
        "train_s": evaluating - training,
        "eval_s": ended - evaluating,
        "whole_s": ended - started,
        "cpu_s": time.process_time() - cpu,
        "train_images": len(train_set),
        "accuracy": correct / len(test_set),
        "threads": torch.get_num_threads(),
    }
