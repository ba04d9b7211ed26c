"""Training on real MNIST: accuracy, reporting, determinism, cancelling and divergence."""

from __future__ import annotations

import itertools
import math
import threading
import time
from dataclasses import dataclass, field

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tests.support.datasets import head
from tests.support.hyperparameters import mlp
from trainer import data, models, training
from tuner.v1 import job_pb2

CPU = torch.device("cpu")
SEED = 1


@dataclass
class Recorder:
    progress: list[tuple[float, job_pb2.Progress]] = field(default_factory=list)
    epochs: list[job_pb2.EpochMetrics] = field(default_factory=list)

    def on_progress(self, progress: job_pb2.Progress) -> None:
        self.progress.append((time.monotonic(), progress))

    def on_epoch(self, metrics: job_pb2.EpochMetrics) -> None:
        self.epochs.append(metrics)


def run(
    hp: job_pb2.Hyperparameters,
    dataset: data.Dataset,
    recorder: Recorder | None = None,
    should_stop: object = None,
    interval: float = 0.2,
) -> job_pb2.Result:
    recorder = recorder or Recorder()
    stop = should_stop if callable(should_stop) else (lambda: False)
    return training.train(
        hp, dataset, CPU, recorder.on_progress, recorder.on_epoch, stop, progress_interval=interval
    )


def seconds(duration: object) -> float:
    assert hasattr(duration, "ToNanoseconds")
    return float(duration.ToNanoseconds()) / 1e9


def test_one_mlp_epoch_on_full_mnist_learns_and_reports(mnist: data.Dataset) -> None:
    recorder = Recorder()
    started = time.monotonic()
    result = run(mlp(SEED), mnist, recorder, interval=0.2)
    wall = time.monotonic() - started

    assert result.test_accuracy >= 0.95
    assert 0 < result.test_loss < 0.3
    assert result.device == "cpu"

    times = [at for at, _ in recorder.progress]
    reports = [progress for _, progress in recorder.progress]
    steps = [progress.step for progress in reports]
    assert steps == sorted(set(steps))
    assert reports[-1] == job_pb2.Progress(
        epoch=1, total_epochs=1, step=938, total_steps=938, loss=recorder.epochs[0].train_loss
    )
    assert all(p.total_steps == 938 and math.isfinite(p.loss) and p.loss > 0 for p in reports)
    # Throttled: all but the epoch-end report come at least an interval apart.
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[:-1])]
    assert all(gap >= 0.19 for gap in gaps)
    assert len(reports) <= wall / 0.2 + 2

    [epoch] = recorder.epochs
    assert epoch.epoch == 1
    assert epoch.test_accuracy == result.test_accuracy
    assert epoch.test_loss == result.test_loss
    training_s = seconds(result.training_duration)
    evaluation_s = seconds(result.evaluation_duration)
    assert training_s > 0
    assert evaluation_s > 0
    assert result.training_duration == epoch.training_duration
    assert result.evaluation_duration == epoch.evaluation_duration
    assert training_s + evaluation_s <= wall
    print(f"1 MLP epoch: accuracy {result.test_accuracy:.4f}, ", end="")
    print(f"training {training_s:.2f} s, evaluation {evaluation_s:.3f} s, wall {wall:.2f} s")


def test_each_epoch_is_reported_once_and_durations_add_up(mnist: data.Dataset) -> None:
    recorder = Recorder()
    result = run(mlp(SEED, epochs=3, batch_size=128), head(mnist, 2048, 1000), recorder)

    assert [m.epoch for m in recorder.epochs] == [1, 2, 3]
    ends = [p for _, p in recorder.progress if p.step % 16 == 0]
    assert [(p.epoch, p.step) for p in ends] == [(1, 16), (2, 32), (3, 48)]
    assert seconds(result.training_duration) == pytest.approx(
        sum(seconds(m.training_duration) for m in recorder.epochs)
    )
    assert seconds(result.evaluation_duration) == pytest.approx(
        sum(seconds(m.evaluation_duration) for m in recorder.epochs)
    )
    assert result.test_accuracy == recorder.epochs[-1].test_accuracy


@pytest.mark.parametrize("model", [job_pb2.MODEL_MLP, job_pb2.MODEL_CNN], ids=["mlp", "cnn"])
def test_the_same_seed_gives_the_same_result(mnist: data.Dataset, model: int) -> None:
    cnn = model == job_pb2.MODEL_CNN
    small = head(mnist, 256 if cnn else 4096, 200 if cnn else 1000)
    epochs = 1 if cnn else 2
    first = run(mlp(SEED, model=model, epochs=epochs), small)
    again = run(mlp(SEED, model=model, epochs=epochs), small)
    other = run(mlp(2, model=model, epochs=epochs), small)

    assert (again.test_accuracy, again.test_loss) == (first.test_accuracy, first.test_loss)
    assert other.test_loss != first.test_loss


def test_a_cpu_run_reads_denormals_as_zero_and_leaves_the_thread_as_it_was(
    mnist: data.Dataset,
) -> None:
    # A diverging run's gradients go denormal, many times slower on a CPU: see training.py.
    tiny = torch.finfo(torch.float32).tiny
    inside: list[bool] = []
    before = training.flushing_denormals()

    training.train(
        mlp(SEED),
        head(mnist, 1024, 200),
        CPU,
        lambda progress: None,
        lambda metrics: inside.append(training.flushing_denormals()),
        lambda: False,
    )

    assert not before
    assert inside == [True]
    assert not training.flushing_denormals()
    assert (torch.tensor(tiny) / 4).item() > 0  # the thread computes with denormals again
    with training.denormals_flushed(CPU):
        assert (torch.tensor(tiny) / 4).item() == 0


def test_should_stop_cancels_a_big_cnn_batch_quickly(mnist: data.Dataset) -> None:
    stop = threading.Event()
    stopped_at: list[float] = []

    def stop_soon() -> None:
        stopped_at.append(time.monotonic())
        stop.set()

    timer = threading.Timer(0.5, stop_soon)
    timer.start()
    hp = mlp(SEED, model=job_pb2.MODEL_CNN, batch_size=8192)
    try:
        with pytest.raises(training.Cancelled):
            run(hp, head(mnist, 8192, 500), should_stop=stop.is_set)
        latency = time.monotonic() - stopped_at[0]
    finally:
        timer.cancel()
    # A whole 8192-image batch takes 7-16 s here; the bound leaves room for a busy machine.
    assert latency < 1.0


def test_a_stop_before_the_first_batch_trains_nothing(mnist: data.Dataset) -> None:
    recorder = Recorder()
    with pytest.raises(training.Cancelled):
        run(mlp(SEED), mnist, recorder, should_stop=lambda: True)
    assert recorder.progress == []
    assert recorder.epochs == []


def test_a_huge_learning_rate_diverges(mnist: data.Dataset) -> None:
    hp = mlp(SEED, optimizer=job_pb2.OPTIMIZER_SGD, learning_rate=10.0)
    recorder = Recorder()
    with pytest.raises(training.Diverged, match="epoch 1"):
        run(hp, head(mnist, 4096, 500), recorder)
    assert recorder.epochs == []


@pytest.mark.parametrize(
    "optimizer", [job_pb2.OPTIMIZER_SGD, job_pb2.OPTIMIZER_ADADELTA], ids=["sgd", "adadelta"]
)
def test_the_other_optimizers_learn(mnist: data.Dataset, optimizer: int) -> None:
    rate = 0.05 if optimizer == job_pb2.OPTIMIZER_SGD else 1.0
    result = run(mlp(SEED, optimizer=optimizer, learning_rate=rate), head(mnist, 4096, 1000))
    assert result.test_accuracy > 0.8


def test_the_cnn_trains_end_to_end(mnist: data.Dataset) -> None:
    recorder = Recorder()
    result = run(mlp(SEED, model=job_pb2.MODEL_CNN), head(mnist, 512, 500), recorder)

    assert 0 <= result.test_accuracy <= 1
    assert math.isfinite(result.test_loss)
    assert len(recorder.epochs) == 1
    assert recorder.progress[-1][1].step == 8


@pytest.mark.parametrize("model", [job_pb2.MODEL_CNN, job_pb2.MODEL_MLP], ids=["cnn", "mlp"])
def test_models_output_log_probabilities(model: int) -> None:
    network = models.build(model).eval()
    with torch.inference_mode():
        output = network(torch.randn(3, 1, 28, 28))
    assert output.shape == (3, 10)
    assert torch.allclose(output.exp().sum(dim=1), torch.ones(3))


def test_unknown_enum_values_are_refused() -> None:
    with pytest.raises(ValueError, match="model"):
        models.build(job_pb2.MODEL_UNSPECIFIED)
    with pytest.raises(ValueError, match="optimizer"):
        training.make_optimizer(job_pb2.OPTIMIZER_UNSPECIFIED, [], 0.1)


def test_pick_device() -> None:
    assert training.pick_device("cpu") == CPU
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(training.pick_device()) == expected
    with pytest.raises(ValueError, match="unknown device"):
        training.pick_device("abacus")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            training.pick_device("cuda")


def test_the_batch_order_is_the_one_a_seeded_dataloader_draws() -> None:
    samples = TensorDataset(torch.arange(1000))
    loader = DataLoader(
        samples, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(7)
    )
    generator = torch.Generator().manual_seed(7)
    for _ in range(3):
        expected = torch.cat([batch for (batch,) in loader])
        assert torch.equal(training.batch_order(1000, generator), expected)
