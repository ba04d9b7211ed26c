"""Continuing a run from a checkpoint's bytes gives, bit for bit, the uninterrupted run's result."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
import torch

from tests.support.datasets import head
from tests.support.hyperparameters import cnn, mlp
from trainer import checkpoints, data, training
from tuner.core.hyperparameters import lineage
from tuner.v1 import job_pb2

CPU = torch.device("cpu")
SEED = 3
JOB = "a" * 32


@dataclass
class Run:
    result: job_pb2.Result
    saved: dict[int, bytes] = field(default_factory=dict)  # each epoch's checkpoint bytes
    weights: dict[str, torch.Tensor] = field(default_factory=dict)  # the final ones
    epochs: list[job_pb2.EpochMetrics] = field(default_factory=list)


def train(hp: job_pb2.Hyperparameters, dataset: data.Dataset, start: bytes | None = None) -> Run:
    """Train, encoding a checkpoint after each epoch; from `start`'s bytes when given."""
    saved: dict[int, bytes] = {}
    weights: dict[str, torch.Tensor] = {}
    epochs: list[job_pb2.EpochMetrics] = []

    def on_state(state: training.State) -> None:
        origins = tuple(checkpoints.Origin(JOB, 1) for _ in state.epochs)
        checkpoint = checkpoints.Checkpoint(lineage(hp), "cpu", state, origins)
        saved[state.epoch] = checkpoints.encode(checkpoint)
        weights.clear()
        weights.update({k: v.detach().clone() for k, v in state.model.items()})

    restored = None if start is None else decode(hp, start).state
    result = training.train(
        hp,
        dataset,
        CPU,
        lambda _: None,
        epochs.append,
        lambda: False,
        start=restored,
        on_state=on_state,
        attempt=1,
    )
    return Run(result, saved, weights, epochs)


def decode(hp: job_pb2.Hyperparameters, data_: bytes) -> checkpoints.Checkpoint:
    return checkpoints.decode(data_, hp, lineage(hp), "cpu")


def assert_same(resumed: Run, straight: Run) -> None:
    assert resumed.result.test_accuracy == straight.result.test_accuracy
    assert resumed.result.test_loss == straight.result.test_loss
    assert resumed.weights.keys() == straight.weights.keys()
    for name, tensor in straight.weights.items():
        assert torch.equal(resumed.weights[name], tensor), name


def test_an_mlp_continued_from_epoch_1_or_extended_from_2_is_the_straight_run(
    mnist: data.Dataset,
) -> None:
    hp4 = mlp(SEED, batch_size=256, epochs=4)
    straight4 = train(hp4, mnist)

    # A 3-epoch job stopped after epoch 1 (of its lineage: epoch k does not depend on the
    # epochs that follow), continued: the straight run's epoch 3.
    hp3 = mlp(SEED, batch_size=256, epochs=3)
    resumed = train(hp3, mnist, start=straight4.saved[1])
    assert [m.epoch for m in resumed.epochs] == [2, 3]  # only the epochs after the checkpoint
    epoch3 = decode(hp4, straight4.saved[3])
    assert resumed.result.test_accuracy == epoch3.state.epochs[-1].test_accuracy
    assert resumed.result.test_loss == epoch3.state.epochs[-1].test_loss
    for name, tensor in epoch3.state.model.items():
        assert torch.equal(resumed.weights[name], tensor), name

    # A 2-epoch job, extended to 4 from its final checkpoint: the straight 4-epoch run.
    two = train(mlp(SEED, batch_size=256, epochs=2), mnist)
    extended = train(hp4, mnist, start=two.saved[2])
    assert_same(extended, straight4)
    every = decode(hp4, extended.saved[4]).state.epochs
    assert [m.epoch for m in every] == [1, 2, 3, 4]
    assert list(every[:2]) == two.epochs
    # The durations add up every epoch's, the reused ones too.
    assert extended.result.training_duration.ToNanoseconds() == sum(
        m.training_duration.ToNanoseconds() for m in every
    )


def test_a_cnn_continued_from_a_checkpoint_is_the_straight_run(mnist: data.Dataset) -> None:
    small = head(mnist, 128, 64)
    hp = cnn(SEED, epochs=3)
    straight = train(hp, small)
    resumed = train(hp, small, start=straight.saved[1])
    assert_same(resumed, straight)


def test_the_dropout_masks_depend_on_the_restored_random_state(mnist: data.Dataset) -> None:
    """Were the global generator not restored, the CNN's dropout would differ: the test above
    would fail. So would it without the batch-order generator's state."""
    small = head(mnist, 128, 64)
    hp = cnn(SEED, epochs=2)
    straight = train(hp, small)
    checkpoint = decode(hp, straight.saved[1])
    for broken in (
        dataclasses.replace(checkpoint.state, rng=torch.Generator().manual_seed(99).get_state()),
        dataclasses.replace(
            checkpoint.state, generator=torch.Generator().manual_seed(99).get_state()
        ),
    ):
        data_ = checkpoints.encode(dataclasses.replace(checkpoint, state=broken))
        other = train(hp, small, start=data_)
        assert any(not torch.equal(other.weights[k], v) for k, v in straight.weights.items())


def test_a_state_continued_from_is_left_as_it_was(mnist: data.Dataset) -> None:
    """Training from a State does not update its tensors: it can be continued from again."""
    small = head(mnist, 128, 64)
    hp = cnn(SEED, epochs=2)
    straight = train(hp, small)
    state = decode(hp, straight.saved[1]).state
    for _ in range(2):
        weights: dict[str, torch.Tensor] = {}

        def keep(final: training.State, into: dict[str, torch.Tensor] = weights) -> None:
            into.update({k: v.detach().clone() for k, v in final.model.items()})

        result = training.train(
            hp, small, CPU, lambda _: None, lambda _: None, lambda: False, start=state,
            on_state=keep,
        )  # fmt: skip
        assert (result.test_accuracy, result.test_loss) == (
            straight.result.test_accuracy,
            straight.result.test_loss,
        )
        assert all(torch.equal(weights[k], v) for k, v in straight.weights.items())


def test_a_job_already_complete_in_its_checkpoint_trains_nothing(mnist: data.Dataset) -> None:
    hp = mlp(SEED, batch_size=512, epochs=2)
    small = head(mnist, 4096, 1000)
    straight = train(hp, small)
    again = train(hp, small, start=straight.saved[2])

    assert again.epochs == [] and again.saved == {}
    assert again.result == straight.result


def test_a_checkpoint_of_another_epoch_count_is_refused(mnist: data.Dataset) -> None:
    hp = mlp(SEED, batch_size=512, epochs=2)
    small = head(mnist, 1024, 100)
    state = decode(hp, train(hp, small).saved[2]).state
    with pytest.raises(ValueError, match="epoch 2 of 1"):
        training.train(
            mlp(SEED, batch_size=512, epochs=1), small, CPU, print, print, lambda: False,
            start=state,
        )  # fmt: skip
