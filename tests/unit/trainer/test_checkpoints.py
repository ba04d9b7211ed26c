"""Checkpoints: the format's round trip; the latest good one in the store, damage passed over."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import threading
import uuid
from typing import Any

import pytest
import torch
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE

from tests.support.hyperparameters import cnn, mlp
from tests.support.servers import Nats
from trainer import checkpoints, models, training
from trainer.checkpoints import Checkpoint, Damaged, Origin
from tuner.core import streams
from tuner.v1 import job_pb2

JOB = "b" * 32
OTHER = "c" * 32


def state(hp: job_pb2.Hyperparameters, epoch: int) -> training.State:
    """A run's state as training hands it over: a network, its optimizer, random states."""
    network = models.build(hp.model)
    optimizer = training.make_optimizer(hp.optimizer, network.parameters(), hp.learning_rate)
    network(torch.rand(4, 1, 28, 28)).sum().backward()
    optimizer.step()  # the optimizer has state to keep
    epochs = tuple(
        job_pb2.EpochMetrics(epoch=e, test_accuracy=0.9 + e / 100, test_loss=1 / e, attempt=1)
        for e in range(1, epoch + 1)
    )
    return training.State(
        epoch=epoch,
        model=network.state_dict(),
        optimizer=optimizer.state_dict(),
        rng=torch.get_rng_state(),
        cuda_rng=None,
        generator=torch.Generator().manual_seed(epoch).get_state(),
        epochs=epochs,
    )


def checkpoint(hp: job_pb2.Hyperparameters, lineage: str, epoch: int) -> Checkpoint:
    origins = tuple(Origin(OTHER if e == 1 else JOB, 1) for e in range(1, epoch + 1))
    return Checkpoint(lineage, "cpu", state(hp, epoch), origins)


def test_the_format_round_trip_keeps_everything() -> None:
    hp = cnn(1)
    original = checkpoint(hp, "l" * 32, 2)
    back = checkpoints.decode(checkpoints.encode(original), hp, "l" * 32, "cpu")

    assert (back.lineage, back.device_type, back.epoch) == ("l" * 32, "cpu", 2)
    assert back.origins == original.origins
    assert back.state.epochs == original.state.epochs
    assert torch.equal(back.state.rng, original.state.rng)
    assert torch.equal(back.state.generator, original.state.generator)
    assert back.state.cuda_rng is None
    for name, tensor in original.state.model.items():
        assert torch.equal(back.state.model[name], tensor)
    restored = training.make_optimizer(
        hp.optimizer, models.build(hp.model).parameters(), hp.learning_rate
    )
    restored.load_state_dict(back.state.optimizer)
    for before, after in zip(
        original.state.optimizer["state"].values(),
        restored.state_dict()["state"].values(),
        strict=True,
    ):
        assert all(torch.equal(before[k], after[k]) for k in before)

    # Epoch 1 was trained by another job: reused for JOB; epoch 2 keeps JOB's attempt.
    reported = back.reported(JOB, 1)
    assert [(m.epoch, m.attempt, m.reused) for m in reported] == [(1, 0, True), (2, 1, False)]
    assert [(m.attempt, m.reused) for m in back.reported(JOB, 2)] == [(0, True), (0, True)]


def test_bytes_that_are_not_a_checkpoint_of_the_run_are_refused() -> None:
    hp = mlp(1)
    data = checkpoints.encode(checkpoint(hp, "l" * 32, 1))

    with pytest.raises(Damaged, match="does not load"):
        checkpoints.decode(data[: len(data) // 2], hp, "l" * 32, "cpu")
    with pytest.raises(Damaged, match="does not load"):
        checkpoints.decode(b"\0" * 100, hp, "l" * 32, "cpu")
    with pytest.raises(Damaged, match="of run"):
        checkpoints.decode(data, hp, "m" * 32, "cpu")
    with pytest.raises(Damaged, match="of run"):
        checkpoints.decode(data, hp, "l" * 32, "cuda")
    with pytest.raises(Damaged, match="does not fit the model"):
        checkpoints.decode(data, cnn(1), "l" * 32, "cpu")


async def tamper(nats: Nats, name: str, replacement: bytes) -> None:
    """Replace the stored chunks of an object, its metadata (and digest) left as they were."""
    bucket = await nats.js.object_store(streams.CHECKPOINTS_BUCKET)
    info = await bucket.get_info(name)
    subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=streams.CHECKPOINTS_BUCKET, obj=info.nuid)
    await nats.js.purge_stream(f"OBJ_{streams.CHECKPOINTS_BUCKET}", subject=subject)
    for begin in range(0, len(replacement), checkpoints.CHUNK_BYTES):
        await nats.js.publish(subject, replacement[begin : begin + checkpoints.CHUNK_BYTES])


async def test_the_latest_whole_checkpoint_is_found_and_damaged_ones_passed_over(
    nats: Nats, caplog: pytest.LogCaptureFixture
) -> None:
    hp = mlp(1, epochs=5)
    lineage = uuid.uuid4().hex
    store = checkpoints.Store(nats.nc, nats.js)
    saved = {}
    for epoch in (1, 2, 3, 4):
        saved[epoch] = checkpoints.encode(checkpoint(hp, lineage, epoch))
        await store.save(checkpoint(hp, lineage, epoch), saved[epoch])

    found = await store.latest(hp, lineage, "cpu", JOB)
    assert found is not None and found.epoch == 4
    two = await store.latest(mlp(1, epochs=2), lineage, "cpu", JOB)
    assert two is not None and two.epoch == 2  # never past the job's epochs
    assert await store.latest(hp, lineage, "cuda", JOB) is None  # another kind of device

    name = streams.checkpoint_object(lineage, "cpu", 4)
    altered = bytearray(saved[4])
    altered[len(altered) // 2] ^= 0xFF
    await tamper(nats, name, bytes(altered))  # the same size, one bit changed
    await tamper(nats, streams.checkpoint_object(lineage, "cpu", 3), saved[3][:1000])
    truncated = saved[2][: len(saved[2]) - 100]
    await store.put(streams.checkpoint_object(lineage, "cpu", 2), truncated)  # digest agrees
    caplog.set_level(logging.WARNING)

    found = await store.latest(hp, lineage, "cpu", JOB)

    assert found is not None and found.epoch == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "trainer.checkpoints"]
    assert lines == [
        f"job {JOB}: checkpoint {name} is damaged (its SHA-256 digest does not match): "
        "trying epoch 3",
        f"job {JOB}: checkpoint {name[:-1]}3 is damaged (its SHA-256 digest does not match): "
        "trying epoch 2",
        f"job {JOB}: checkpoint {name[:-1]}2 is damaged (does not load: "
        + lines[2].split("does not load: ", 1)[1],
    ]
    assert lines[2].endswith(": trying epoch 1")


async def test_a_finished_run_keeps_its_final_checkpoint_and_other_jobs_final_ones(
    nats: Nats,
) -> None:
    hp = mlp(1, epochs=5)
    lineage = uuid.uuid4().hex
    store = checkpoints.Store(nats.nc, nats.js)
    for epoch in (1, 2, 3):
        await store.save(checkpoint(hp, lineage, epoch), b"x")
    await store.finish(lineage, "cpu", 2)  # a 2-epoch job of the lineage succeeded
    for epoch in (3, 4, 5):  # a 5-epoch one went on from it, and overwrote epoch 3
        await store.save(checkpoint(hp, lineage, epoch), b"y")
    await store.finish(lineage, "cpu", 5)

    names = {e: streams.checkpoint_object(lineage, "cpu", e) for e in range(1, 6)}
    kept = {e for e, name in names.items() if await store.get(name) is not None}
    assert kept == {2, 5}
    bucket = await nats.js.object_store(streams.CHECKPOINTS_BUCKET)
    assert (await bucket.get_info(names[2])).description == checkpoints.FINAL
    assert (await bucket.get_info(names[5])).description == checkpoints.FINAL
    # Saving over a final checkpoint keeps it final.
    await store.save(checkpoint(hp, lineage, 2), b"z")
    assert (await bucket.get_info(names[2])).description == checkpoints.FINAL


class Stalling(io.RawIOBase):
    """A reader that gives its first chunk, then waits until released: a writer killed midway."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.stalled = threading.Event()
        self.release = threading.Event()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.stalled.is_set():
            self.release.wait(30)
            return 0
        size = min(len(buffer), len(self._data))
        buffer[:size] = self._data[:size]
        self.stalled.set()
        return size


async def test_a_writer_killed_midway_leaves_the_previous_checkpoint_whole(nats: Nats) -> None:
    hp = mlp(1, epochs=5)
    lineage = uuid.uuid4().hex
    store = checkpoints.Store(nats.nc, nats.js)
    for epoch in (1, 2):
        await store.save(
            checkpoint(hp, lineage, epoch), checkpoints.encode(checkpoint(hp, lineage, epoch))
        )
    bucket = await nats.js.object_store(streams.CHECKPOINTS_BUCKET)

    # Epoch 3 half written, and epoch 2 half written over: neither put gets to its metadata.
    for epoch in (3, 2):
        reader = Stalling(checkpoints.encode(checkpoint(hp, lineage, 3)))
        name = streams.checkpoint_object(lineage, "cpu", epoch)
        put = asyncio.create_task(bucket.put(name, reader))  # type: ignore[arg-type]
        try:
            await asyncio.to_thread(reader.stalled.wait, 10)
            await asyncio.sleep(0.2)  # its first chunk published
            put.cancel()  # no clean-up runs, as when its process is killed
            with contextlib.suppress(asyncio.CancelledError):
                await put
        finally:
            reader.release.set()

    found = await store.latest(hp, lineage, "cpu", JOB)
    assert found is not None and found.epoch == 2
    assert found.state.epochs == checkpoint(hp, lineage, 2).state.epochs
