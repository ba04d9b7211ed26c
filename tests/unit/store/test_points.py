"""Analysis points against a real MongoDB-protocol server: read once however often filed, newest
first by chunk across datasets, and migrated from the jobs of before."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from store import points
from store.analysis import Selection, matching
from store.documents import Document, now
from store.jobs import JobStore
from tests.support.hyperparameters import mlp
from tests.support.models import stored_job
from tuner.v1 import job_pb2

FASHION = job_pb2.DATASET_FASHION_MNIST


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 3, so a few jobs span several chunks and read batches."""
    monkeypatch.setattr(points, "CHUNK_SIZE", 3)
    monkeypatch.setattr(points, "READ_BATCH", 2)


async def succeeded(store: JobStore, seed: int, minutes: int, **fields: object) -> Document:
    """A SUCCEEDED MLP job that ended `minutes` after a fixed start, with its point filed."""
    ended = now().replace(year=2026, month=1, day=1) + timedelta(minutes=minutes)
    hp = mlp(seed, **fields)
    return await stored_job(store, hp, accuracy=0.5 + seed / 1000, ended=ended, ranked=False)


async def filed_ids(store: JobStore) -> list[str]:
    """Every job id in every chunk, with repeats."""
    chunks = await store.points.find({"points": {"$exists": True}}).to_list()
    return [job_id for chunk in chunks for job_id in chunk["points"]]


async def test_a_job_filed_again_is_read_once(store: JobStore) -> None:
    doc = await succeeded(store, 1, 0)
    other = await succeeded(store, 2, 1)
    # A redelivered success, and two replicas filing one job at once.
    await points.file_point(store, doc)
    await asyncio.gather(points.file_point(store, other), points.file_point(store, other))
    filed = await filed_ids(store)  # chunks of 3: filings 4 and 5 fall into a second chunk
    assert filed.count(doc["_id"]) == 1 and filed.count(other["_id"]) == 2
    latest, more = await points.latest(store, ["mnist"], lambda hp: True, 10)
    assert sorted(d["_id"] for d in latest) == sorted([doc["_id"], other["_id"]]) and not more
    latest, more = await points.latest(store, ["mnist"], lambda hp: True, 1)
    assert [d["_id"] for d in latest] == [other["_id"]] and more


async def test_the_latest_come_from_the_newest_chunks_of_each_dataset(store: JobStore) -> None:
    mnist = [await succeeded(store, seed, minutes=seed) for seed in range(10, 20)]
    fashion = [await succeeded(store, seed, seed - 15, dataset=FASHION) for seed in range(20, 24)]
    assert len(await store.points.find({"dataset": "mnist"}).to_list()) == 4  # 10 in chunks of 3

    latest, more = await points.latest(store, ["mnist"], lambda hp: True, 4)
    assert [d["_id"] for d in latest] == [d["_id"] for d in mnist[-4:]] and more
    assert latest[0]["result"]["test_accuracy"] == pytest.approx(0.516)
    assert latest[0]["hyperparameters"]["dataset"] == "mnist"

    both, more = await matching(store, Selection(), limit=5)
    by_end = sorted(mnist + fashion, key=lambda d: d["end_time"])
    assert [d["_id"] for d in both] == [d["_id"] for d in by_end[-5:]] and more
    everything, more = await matching(store, Selection(), limit=100)
    assert len(everything) == 14 and not more


async def test_a_selection_keeps_its_fields_and_ranges(store: JobStore) -> None:
    for seed, rate in enumerate((0.0001, 0.001, 0.01, 0.1), 30):
        await succeeded(store, seed, seed, learning_rate=rate)
    await succeeded(store, 40, 40, optimizer=job_pb2.OPTIMIZER_SGD, learning_rate=0.01)
    await succeeded(store, 41, 41, model=job_pb2.MODEL_CNN, learning_rate=0.01)
    chosen = Selection({"model": "mlp", "optimizer": "adam"}, {"learning_rate": (0.001, 0.01)})
    found, more = await matching(store, chosen)
    assert [d["hyperparameters"]["learning_rate"] for d in found] == [0.001, 0.01] and not more
    open_ended = Selection({"model": "mlp"}, {"learning_rate": (0.005, None)})
    assert len((await matching(store, open_ended))[0]) == 3
    assert (await matching(store, Selection({"dataset": "fashion-mnist"})))[0] == []


async def test_the_migration_files_the_jobs_of_before_once(store: JobStore) -> None:
    docs = [await succeeded(store, seed, seed) for seed in range(50, 57)]
    await store.points.delete_many({})  # a database from before the points
    await stored_job(store, mlp(58), job_pb2.JOB_STATE_FAILED)  # never analysed
    await points.file_point(store, docs[0])  # filed by a replica meanwhile

    await asyncio.gather(points.migrate(store), points.migrate(store))
    await points.migrate(store)  # done: nothing more
    filed = await filed_ids(store)
    assert set(filed) == {d["_id"] for d in docs} and len(filed) <= 3 * len(docs)
    latest, more = await points.latest(store, ["mnist"], lambda hp: True, 3)
    assert [d["_id"] for d in latest] == [d["_id"] for d in docs[-3:]] and more
    everything, _ = await points.latest(store, ["mnist"], lambda hp: True, 100)
    assert len(everything) == len(docs)
    # A chunk is never over-filled: the migration begins whole chunks of its own.
    for chunk in await store.points.find({"points": {"$exists": True}}).to_list():
        assert len(chunk["points"]) <= points.CHUNK_SIZE
    assert await store.migrations.find_one({"_id": points.MIGRATION}) is not None
