"""A worker and the checkpoints bucket: a longer job reuses a finished one's epochs; a bucket
that is gone costs warnings, not the job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import torch
from nats.aio.msg import Msg

from tests.support.hyperparameters import mlp
from tests.support.servers import Nats
from trainer import data, runs, training
from trainer import worker as worker_module
from trainer.config import Config
from trainer.worker import Successor, Worker
from tuner.core import streams
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.v1 import event_pb2, job_pb2

CPU = torch.device("cpu")
SEED = 1402


@contextlib.asynccontextmanager
async def worker(nats: Nats, nats_url: str, data_dir: Path) -> AsyncIterator[Worker]:
    """A worker taking jobs in this process, no warm-up."""
    config = Config.from_env(
        {
            "TUNER_NATS_URL": nats_url,
            "TUNER_DATA_DIR": str(data_dir),
            "TUNER_DEVICE": "cpu",
            "TUNER_WARM_DATASETS": "none",
        }
    )
    stopping = asyncio.Event()
    running = Worker(config, nats.nc, nats.js)
    await running.listen(stopping)
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        stopping.set()
        await asyncio.wait_for(task, 30)


class Heard:
    def __init__(self) -> None:
        self.events: list[event_pb2.JobEvent] = []

    async def on_message(self, msg: Msg) -> None:
        self.events.append(event_pb2.JobEvent.FromString(msg.data))

    async def wait(
        self, matches: Callable[[event_pb2.JobEvent], bool], timeout: float = 120
    ) -> event_pb2.JobEvent:
        deadline = time.monotonic() + timeout
        while not (found := [e for e in self.events if matches(e)]):
            assert time.monotonic() < deadline, f"not heard in {len(self.events)} events"
            await asyncio.sleep(0.05)
        return found[0]


async def train_job(nats: Nats, heard: Heard, hp: job_pb2.Hyperparameters) -> event_pb2.JobEvent:
    job = job_id(canonical_key(normalized(hp)))
    request = event_pb2.TrainRequest(job_id=job, run=1, hyperparameters=hp)
    await nats.js.publish(streams.JOBS_SUBJECT, request.SerializeToString())
    return await heard.wait(lambda e: e.job_id == job and e.HasField("succeeded"))


@pytest.fixture
async def heard(nats: Nats) -> AsyncIterator[Heard]:
    listener = Heard()
    sub = await nats.nc.subscribe("tuner.events.>", cb=listener.on_message)
    try:
        yield listener
    finally:
        await sub.unsubscribe()


async def test_a_longer_job_trains_only_the_epochs_a_finished_one_did_not(
    nats: Nats, nats_url: str, data_dir: Path, heard: Heard
) -> None:
    one, two = mlp(SEED, epochs=1, batch_size=1024), mlp(SEED, epochs=2, batch_size=1024)
    async with worker(nats, nats_url, data_dir):
        first = await train_job(nats, heard, one)
        second = await train_job(nats, heard, two)

    assert [(m.epoch, m.attempt, m.reused) for m in first.epochs] == [(1, 1, False)]
    assert [(m.epoch, m.attempt, m.reused) for m in second.epochs] == [(1, 0, True), (2, 1, False)]
    assert second.epochs[0].test_loss == first.epochs[0].test_loss
    reported = [e.epoch_completed.epoch for e in heard.events if e.job_id == second.job_id
                and e.HasField("epoch_completed")]  # fmt: skip
    assert reported == [1, 2]
    # As if trained from scratch: the same test metrics, the durations of both epochs.
    mnist = data.load(job_pb2.DATASET_MNIST, data_dir, CPU)
    straight = training.train(two, mnist, CPU, lambda _: None, lambda _: None, lambda: False)
    assert (second.succeeded.test_accuracy, second.succeeded.test_loss) == (
        straight.test_accuracy,
        straight.test_loss,
    )
    assert second.succeeded.training_duration.ToNanoseconds() == sum(
        m.training_duration.ToNanoseconds() for m in second.epochs
    )


async def test_without_the_bucket_a_job_still_succeeds_with_warnings(
    nats: Nats, nats_url: str, data_dir: Path, heard: Heard, caplog: pytest.LogCaptureFixture
) -> None:
    await nats.js.delete_object_store(streams.CHECKPOINTS_BUCKET)
    caplog.set_level(logging.WARNING)
    try:
        async with worker(nats, nats_url, data_dir):
            done = await train_job(nats, heard, mlp(SEED + 1, epochs=1, batch_size=1024))
    finally:
        await streams.ensure_streams(nats.js, streams.QueuePolicy())

    assert done.succeeded.test_accuracy > 0.8
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("trainer.")]
    assert any("no checkpoints to be had" in line for line in warnings), warnings
    assert any("checkpoint of epoch 1 not stored" in line for line in warnings), warnings
    assert any("not stored" in line and "models/" in line for line in warnings), warnings


async def test_the_next_job_starts_while_the_last_ones_models_are_stored(
    nats: Nats, nats_url: str, data_dir: Path, heard: Heard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trained job's models and success go out beside the next job, which does not wait;
    the success still comes only once its models are stored."""
    release = asyncio.Event()
    store_final = runs.Run.store_final

    async def held(self: runs.Run, dataset: data.Dataset) -> None:
        await release.wait()
        await store_final(self, dataset)

    monkeypatch.setattr(runs.Run, "store_final", held)
    one, two = mlp(SEED + 2, epochs=1, batch_size=1024), mlp(SEED + 3, epochs=1, batch_size=1024)
    ids = [job_id(canonical_key(normalized(hp))) for hp in (one, two)]
    async with worker(nats, nats_url, data_dir):
        for jid, hp in zip(ids, (one, two), strict=True):
            request = event_pb2.TrainRequest(job_id=jid, run=1, hyperparameters=hp)
            await nats.js.publish(streams.JOBS_SUBJECT, request.SerializeToString())
        await heard.wait(lambda e: e.job_id == ids[1] and e.HasField("started"))
        assert not [e for e in heard.events if e.HasField("succeeded")], "waited for the models"
        release.set()
        await heard.wait(lambda e: e.job_id == ids[0] and e.HasField("succeeded"))
        await heard.wait(lambda e: e.job_id == ids[1] and e.HasField("succeeded"))
    bucket = await nats.js.object_store(streams.CHECKPOINTS_BUCKET)
    for jid in ids:
        for format_name in ("state-dict", "exported"):
            info = await bucket.get_info(streams.model_object(jid, format_name))
            assert info.size


async def test_a_trained_jobs_models_are_stored_once_the_next_job_has_begun(
    nats: Nats, nats_url: str, data_dir: Path, heard: Heard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next job, queued already, starts first: storing the models would slow its start."""
    monkeypatch.setattr(worker_module, "NEXT_JOB_ARRIVAL", 2.0)  # arrival is not timed here
    store_final = runs.Run.store_final
    running: list[Worker] = []
    stored_beside: dict[str, str | None] = {}  # job -> the job training when its models went

    async def noted(self: runs.Run, dataset: data.Dataset) -> None:
        current = running[0].current
        stored_beside[self._job_id] = current.job_id if current else None
        await store_final(self, dataset)

    monkeypatch.setattr(runs.Run, "store_final", noted)
    one, two = mlp(SEED + 4, epochs=1, batch_size=1024), mlp(SEED + 5, epochs=1, batch_size=1024)
    ids = [job_id(canonical_key(normalized(hp))) for hp in (one, two)]
    async with worker(nats, nats_url, data_dir) as taking:
        running.append(taking)
        for jid, hp in zip(ids, (one, two), strict=True):
            request = event_pb2.TrainRequest(job_id=jid, run=1, hyperparameters=hp)
            await nats.js.publish(streams.JOBS_SUBJECT, request.SerializeToString())
        await heard.wait(lambda e: e.job_id == ids[0] and e.HasField("succeeded"))
        await heard.wait(lambda e: e.job_id == ids[1] and e.HasField("succeeded"))

    assert stored_beside == {ids[0]: ids[1], ids[1]: None}


async def test_a_successor_that_never_arrives_holds_the_models_only_briefly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "NEXT_JOB_ARRIVAL", 0.01)
    await asyncio.wait_for(Successor().wait(), 5)


async def test_a_successor_that_arrived_holds_the_models_until_it_begins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "NEXT_JOB_START", 60.0)
    successor = Successor()
    waiting = asyncio.create_task(successor.wait())
    successor.arrived.set()
    await asyncio.sleep(0.05)
    assert not waiting.done()
    successor.began.set()
    await asyncio.wait_for(waiting, 5)
