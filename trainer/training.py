"""One job's training and per-epoch evaluation on resident tensors, reported through callbacks."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from google.protobuf import duration_pb2
from torch import nn
from torch.nn import functional

from trainer import models
from trainer.data import Dataset, Split
from tuner.v1 import job_pb2


class Cancelled(Exception):
    """should_stop() asked the job to stop."""


class Diverged(Exception):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class State:
    """A run after `epoch`: all that the rest of its training depends on, and its metrics.

    Continuing from it gives, bit for bit, what the run would have gone on to give on the same
    kind of device. Handed to on_state in the training thread, its tensors are the live ones:
    copy or serialize them there (torch.save); a restored State is not modified.
    """

    epoch: int
    model: dict[str, torch.Tensor]  # state_dict()
    optimizer: dict[str, Any]  # state_dict()
    rng: torch.Tensor  # torch.get_rng_state(): the CPU dropout masks
    cuda_rng: torch.Tensor | None  # the device's generator on CUDA (its dropout masks), else None
    generator: torch.Tensor  # the batch-order generator's get_state()
    epochs: tuple[job_pb2.EpochMetrics, ...]  # epochs 1..epoch


def _capture(
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
    epochs: Sequence[job_pb2.EpochMetrics],
) -> State:
    return State(
        epoch=epoch,
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        rng=torch.get_rng_state(),
        cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        generator=generator.get_state(),
        epochs=tuple(epochs),
    )


def _restore(
    state: State,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
) -> None:
    """Back to `state`: weights, optimizer, then the random states (last: nothing draws after)."""
    model.load_state_dict(state.model)  # copied into the parameters
    # The optimizer would adopt the state's tensors and update them in place.
    optimizer.load_state_dict(copy.deepcopy(state.optimizer))
    torch.set_rng_state(state.rng)
    if device.type == "cuda" and state.cuda_rng is not None:
        torch.cuda.set_rng_state(state.cuda_rng, device)
    generator.set_state(state.generator)


def pick_device(preference: str = "auto") -> torch.device:
    """The device to train on: "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(preference)
    except RuntimeError as error:
        raise ValueError(f"unknown device {preference!r}: {error}") from error
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise ValueError(f"unsupported device {preference!r}: use auto, cpu or cuda")
    if not torch.cuda.is_available():
        raise ValueError(f"device {preference!r} asked for, but CUDA is not available")
    # An explicit index makes str(device) name the card ("cuda:0"), as Result.device reports it.
    return torch.device(
        "cuda", torch.cuda.current_device() if device.index is None else device.index
    )


def make_optimizer(
    optimizer: int, parameters: Iterable[nn.Parameter], learning_rate: float
) -> torch.optim.Optimizer:
    """The optimizer for a job_pb2 Optimizer value.

    SGD uses momentum 0.9: plain SGD at the learning rates people try on MNIST barely
    moves in a few epochs, which would make the leaderboard compare nothing useful.
    Adam and Adadelta keep PyTorch's defaults apart from the learning rate. SGD and Adam
    use the fused kernels (CPU and CUDA): one op per step instead of several per parameter,
    a fifth of the MLP's step time on a CPU.
    """
    if optimizer == job_pb2.OPTIMIZER_SGD:
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=0.9, fused=True)
    if optimizer == job_pb2.OPTIMIZER_ADAM:
        return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
    if optimizer == job_pb2.OPTIMIZER_ADADELTA:
        return torch.optim.Adadelta(parameters, lr=learning_rate)
    raise ValueError(f"unknown optimizer enum value {optimizer}")


def chunk_sizes(model: int, device: torch.device) -> tuple[int, int]:
    """Samples per training and per evaluation pass.

    A batch is split into passes (gradients accumulate, so the update is the same) to bound
    the time between two should_stop() checks: on a 2-core CPU the CNN trains ~500 images/s,
    so a whole 8192-image batch would make a cancel wait ~16 s.
    """
    if device.type != "cpu":
        return 8192, 4096
    if model == job_pb2.MODEL_CNN:
        # Evaluation: small chunks keep the conv activations in cache, ~2x over 1000 here.
        return 128, 128
    return 2048, 4096


def memory_format(model: int, device: torch.device) -> torch.memory_format:
    """channels_last for the CNN on a CPU: oneDNN's convolutions work in it natively.

    Measured on 2 cores: evaluation ~2x, training 5-15% faster; the same math. Not
    measured on a GPU, so left as it was there.
    """
    if device.type == "cpu" and model == job_pb2.MODEL_CNN:
        return torch.channels_last
    return torch.contiguous_format


def cpu_threads(model: int, device: torch.device) -> int:
    """A cap on torch's threads for the job, 0 for none.

    The MLP's matrices (batch x 784 x 256) are too small to split well: on 2 cores a second
    thread gained at most a fifth on an idle machine and made steps 3-10x slower whenever
    another process wanted a core, as the scheduler, NATS and the database do beside a trainer.
    """
    return 1 if device.type == "cpu" and model == job_pb2.MODEL_MLP else 0


@contextlib.contextmanager
def torch_threads(cap: int) -> Iterator[None]:
    """At most `cap` torch threads in this thread while the block runs (0: unchanged)."""
    before = torch.get_num_threads()
    if not cap or cap >= before:
        yield
        return
    torch.set_num_threads(cap)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def denormals_flushed(device: torch.device) -> Iterator[None]:
    """Denormal floats read and written as zero on the CPU, in this thread, while the block runs.

    Tiny gradients (Adam's squares of them above all, most in a diverging run) fall below
    float32's normal range, where the CPU takes many times longer over each operation: an MLP
    epoch with Adam at batch 64 took 1.91 s at a learning rate of 0.08 and 1.52 s at 0.003,
    against 1.30 s and 1.31 s flushed (benchmarks/RESULTS.md). Results stay deterministic; a
    run only differs where a value that small was in it. Threads started inside the block
    (torch's own among them) inherit the setting.
    """
    if device.type != "cpu":
        yield
        return
    before = flushing_denormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def flushing_denormals() -> bool:
    """Whether this thread reads denormal floats as zero."""
    return bool(torch.tensor(torch.finfo(torch.float32).tiny / 2, dtype=torch.float32) == 0)


def batch_order(count: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch's sample order: the one DataLoader(shuffle=True, generator=generator) draws.

    So a job's seed gives the batches a plain PyTorch script seeded alike sees. Per epoch the
    DataLoader draws a base seed for its workers, the permutation, and a second permutation
    that RandomSampler computes and throws away at the epoch's end; the same draws keep step.
    """
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(count, generator=generator)
    torch.randperm(count, generator=generator)
    return order


def _duration(nanoseconds: int) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(nanoseconds)
    return duration


def _finite(loss: float, epoch: int, step: int, total_steps: int) -> float:
    if not math.isfinite(loss):
        raise Diverged(
            f"training loss became {loss} in epoch {epoch} (by step {step}/{total_steps})"
        )
    return loss


def evaluate(
    model: nn.Module, split: Split, chunk: int, should_stop: Callable[[], bool]
) -> tuple[float, float]:
    """Mean loss and accuracy (0..1) of the model on a split."""
    model.eval()
    with torch.inference_mode():
        loss = torch.zeros((), dtype=torch.float64, device=split.images.device)
        correct = torch.zeros((), dtype=torch.int64, device=split.images.device)
        for images, labels in zip(
            torch.split(split.images, chunk), torch.split(split.labels, chunk), strict=True
        ):
            if should_stop():
                raise Cancelled("stopped while evaluating")
            output = model(images)
            loss += functional.nll_loss(output, labels, reduction="sum")
            correct += (output.argmax(dim=1) == labels).sum()
        count = len(split)
        return loss.item() / count, correct.item() / count


def train(
    hp: job_pb2.Hyperparameters,
    data: Dataset,
    device: torch.device,
    on_progress: Callable[[job_pb2.Progress], None],
    on_epoch: Callable[[job_pb2.EpochMetrics], None],
    should_stop: Callable[[], bool],
    progress_interval: float = 0.2,
    *,
    start: State | None = None,
    on_state: Callable[[State], None] | None = None,
    attempt: int = 0,
) -> job_pb2.Result:
    """Train hp's model on data.train, evaluating on data.test after each epoch.

    The same hyperparameters on the same device give the same result: the seed fixes the
    initial weights, dropout and the batch order. Raises Cancelled soon after should_stop()
    turns true and Diverged when the training loss stops being finite.

    With `start` (a State of this lineage, at most hp.epochs) it goes on after start.epoch,
    the result the same as training from scratch; when start.epoch is hp.epochs it trains and
    evaluates nothing. After each epoch on_state gets the State (before on_epoch its metrics,
    marked with `attempt`); the result's durations add up every epoch's, restored ones too.
    """
    with torch_threads(cpu_threads(hp.model, device)), denormals_flushed(device):
        return _train(
            hp,
            data,
            device,
            _Reports(on_progress, on_epoch, on_state, attempt),
            should_stop,
            progress_interval,
            start,
        )


@dataclass(frozen=True)
class _Reports:
    progress: Callable[[job_pb2.Progress], None]
    epoch: Callable[[job_pb2.EpochMetrics], None]
    state: Callable[[State], None] | None
    attempt: int


def _train(
    hp: job_pb2.Hyperparameters,
    data: Dataset,
    device: torch.device,
    reports: _Reports,
    should_stop: Callable[[], bool],
    progress_interval: float,
    start: State | None,
) -> job_pb2.Result:
    if start is not None and not (
        0 < start.epoch <= hp.epochs and len(start.epochs) == start.epoch
    ):
        raise ValueError(f"cannot continue from epoch {start.epoch} of {hp.epochs}")
    torch.manual_seed(hp.seed)
    model = models.build(hp.model).to(device).to(memory_format=memory_format(hp.model, device))
    optimizer = make_optimizer(hp.optimizer, model.parameters(), hp.learning_rate)
    # A CPU generator gives the same batch order on every device.
    generator = torch.Generator().manual_seed(hp.seed)
    history: list[job_pb2.EpochMetrics] = []
    if start is not None:
        # After the model's seeded initialisation and the optimizer, as in a run from scratch.
        _restore(start, model, optimizer, generator, device)
        history.extend(start.epochs)
    done = start.epoch if start is not None else 0
    train_chunk, eval_chunk = chunk_sizes(hp.model, device)
    images, labels = data.train.images, data.train.labels
    count, batch = len(data.train), hp.batch_size
    total_steps = hp.epochs * math.ceil(count / batch)
    step = done * math.ceil(count / batch)
    training_ns = sum(m.training_duration.ToNanoseconds() for m in history)
    evaluation_ns = sum(m.evaluation_duration.ToNanoseconds() for m in history)
    test_loss = history[-1].test_loss if history else 0.0
    test_accuracy = history[-1].test_accuracy if history else 0.0
    last_report = time.monotonic()
    on_progress, on_epoch = reports.progress, reports.epoch

    def progress(epoch: int, loss: float) -> job_pb2.Progress:
        return job_pb2.Progress(
            epoch=epoch, total_epochs=hp.epochs, step=step, total_steps=total_steps, loss=loss
        )

    for epoch in range(done + 1, hp.epochs + 1):
        started = time.perf_counter_ns()
        model.train()
        order = batch_order(count, generator).to(device)
        # Summed on the device and read only when reported: a read per batch would sync.
        loss_sum = torch.zeros((), device=device)
        seen = 0
        for begin in range(0, count, batch):
            indices = order[begin : begin + batch]
            optimizer.zero_grad(set_to_none=True)
            for part in torch.split(indices, train_chunk):
                if should_stop():
                    raise Cancelled(f"stopped in epoch {epoch} at step {step}/{total_steps}")
                # index_select: images[part] costs ~3x as much per batch on a CPU.
                loss = functional.nll_loss(
                    model(images.index_select(0, part)),
                    labels.index_select(0, part),
                    reduction="sum",
                )
                torch.autograd.backward(loss / len(indices))
                loss_sum += loss.detach()
            optimizer.step()
            step += 1
            seen += len(indices)
            now = time.monotonic()
            if now - last_report >= progress_interval and seen < count:
                mean = _finite(loss_sum.item() / seen, epoch, step, total_steps)
                on_progress(progress(epoch, mean))
                last_report = now
        train_loss = _finite(loss_sum.item() / count, epoch, step, total_steps)
        epoch_training_ns = time.perf_counter_ns() - started
        on_progress(progress(epoch, train_loss))
        last_report = time.monotonic()

        started = time.perf_counter_ns()
        test_loss, test_accuracy = evaluate(model, data.test, eval_chunk, should_stop)
        epoch_evaluation_ns = time.perf_counter_ns() - started
        if not math.isfinite(test_loss):
            raise Diverged(f"test loss became {test_loss} after epoch {epoch}")
        training_ns += epoch_training_ns
        evaluation_ns += epoch_evaluation_ns
        metrics = job_pb2.EpochMetrics(
            epoch=epoch,
            train_loss=train_loss,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
            training_duration=_duration(epoch_training_ns),
            evaluation_duration=_duration(epoch_evaluation_ns),
            attempt=reports.attempt,
        )
        history.append(metrics)
        if reports.state is not None:
            reports.state(_capture(epoch, model, optimizer, generator, device, history))
        on_epoch(metrics)

    return job_pb2.Result(
        test_accuracy=test_accuracy,
        test_loss=test_loss,
        training_duration=_duration(training_ns),
        evaluation_duration=_duration(evaluation_ns),
        device=str(device),
    )
