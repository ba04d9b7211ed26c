"""JobStore against a real MongoDB-protocol server: conditional transitions, ranking, paging."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pymongo.monitoring import CommandStartedEvent

from store.documents import Document, new_job, now
from store.jobs import LEADERBOARD_SIZE, JobStore
from tests.support.documents import job_doc
from tests.support.hyperparameters import mlp
from tests.support.stores import StartedCommands, listened_store
from tuner.core.hyperparameters import (
    DATASETS,
    MODELS,
    canonical_key,
    job_id,
    lineage,
    normalized,
)
from tuner.core.states import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from tuner.v1 import job_pb2


def on_dataset(seed: int, dataset: str, model: str = "cnn") -> Document:
    """A job_doc of `dataset` and `model`, under its own id."""
    hp = normalized(
        job_pb2.Hyperparameters(
            epochs=1,
            learning_rate=0.1,
            batch_size=64,
            seed=seed,
            dataset=DATASETS[dataset],
            model=MODELS[model],
        )
    )
    key = canonical_key(hp)
    return new_job(job_id(key), key, hp, "alice")


def result(accuracy: float, seconds: float) -> dict[str, object]:
    return {
        "test_accuracy": accuracy,
        "test_loss": 0.1,
        "training_seconds": seconds,
        "evaluation_seconds": 0.5,
        "device": "cpu",
    }


async def test_insert_is_once_per_configuration(store: JobStore) -> None:
    doc = job_doc(1)
    assert await store.insert(doc)
    assert not await store.insert(job_doc(1))
    assert await store.jobs.count_documents({}) == 1


async def test_a_transition_happens_once_and_never_backwards(store: JobStore) -> None:
    doc = job_doc(2)
    await store.insert(doc)
    jid = str(doc["_id"])
    assert await store.transition(jid, 1, RUNNING, {"attempts": 1}, attempt=0)
    assert not await store.transition(jid, 1, RUNNING, {"attempts": 1}, attempt=0), "same attempt"
    assert await store.transition(jid, 1, SUCCEEDED, {"result": result(0.9, 1)}, attempt=1)
    assert not await store.transition(jid, 1, SUCCEEDED, {"result": result(0.5, 1)}, attempt=1)
    assert not await store.transition(jid, 1, FAILED, {"error": "late"}, attempt=1)
    assert not await store.transition(jid, 1, CANCELLED)
    assert not await store.transition(jid, 1, QUEUED)
    got = await store.get(jid)
    assert got is not None
    assert got["state"] == "SUCCEEDED"
    assert got["result"]["test_accuracy"] == 0.9


async def test_a_superseded_attempt_cannot_finish_the_job(store: JobStore) -> None:
    doc = job_doc(3)
    await store.insert(doc)
    jid = str(doc["_id"])
    assert await store.transition(jid, 1, RUNNING, {"attempts": 1}, attempt=0)
    assert await store.transition(jid, 1, RUNNING, {"attempts": 2}, attempt=1), "redelivery"
    assert not await store.transition(jid, 1, SUCCEEDED, {"result": result(0.1, 1)}, attempt=1)
    assert await store.transition(jid, 1, SUCCEEDED, {"result": result(0.9, 1)}, attempt=2)


async def test_concurrent_transitions_have_one_winner(store: JobStore) -> None:
    doc = job_doc(4)
    await store.insert(doc)
    jid = str(doc["_id"])
    await store.transition(jid, 1, RUNNING, {"attempts": 1}, attempt=0)
    outcomes = await asyncio.gather(
        *[store.transition(jid, 1, SUCCEEDED, {"n": i}, attempt=1) for i in range(8)],
        *[store.transition(jid, 1, CANCELLED, {"n": 100 + i}) for i in range(8)],
    )
    assert sum(outcomes) == 1


async def test_a_failed_job_runs_again_as_the_next_run(store: JobStore) -> None:
    doc = job_doc(5)
    await store.insert(doc)
    jid = str(doc["_id"])
    assert await store.transition(jid, 1, FAILED, {"error": "boom"})
    assert await store.requeue(jid, 1, "bob")
    assert not await store.requeue(jid, 1, "carol"), "only one resubmission wins"
    got = await store.get(jid)
    assert got is not None
    assert (got["state"], got["run"], got["owner"], got["error"]) == ("QUEUED", 2, "bob", "")
    assert not await store.transition(jid, 1, RUNNING, {"attempts": 1}, attempt=0), "old run"


async def test_epochs_are_recorded_once(store: JobStore) -> None:
    doc = job_doc(6)
    await store.insert(doc)
    jid = str(doc["_id"])
    await store.transition(jid, 1, RUNNING, {"attempts": 1}, attempt=0)
    metrics = {
        "epoch": 1,
        "train_loss": 0.5,
        "test_loss": 0.4,
        "test_accuracy": 0.9,
        "training_seconds": 1.0,
        "evaluation_seconds": 0.1,
    }
    assert await store.add_epoch(jid, 1, 1, metrics, {"epoch": 1})
    assert not await store.add_epoch(jid, 1, 1, metrics, {"epoch": 1})
    assert not await store.add_epoch(jid, 1, 2, dict(metrics, epoch=2), {"epoch": 2}), "attempt"
    got = await store.get(jid)
    assert got is not None
    assert [m["epoch"] for m in got["history"]] == [1]


async def test_the_leaderboard_ranks_by_accuracy_then_training_time(store: JobStore) -> None:
    entries = [(0.90, 5.0), (0.95, 9.0), (0.95, 3.0), (0.80, 1.0)]
    for seed, (accuracy, seconds) in enumerate(entries, start=10):
        doc = job_doc(seed)
        doc.update(state="SUCCEEDED", result=result(accuracy, seconds))
        await store.rank(doc)
    ranked = [
        (d["result"]["test_accuracy"], d["result"]["training_seconds"])
        for d in await store.top(10, "mnist")
    ]
    assert ranked == [(0.95, 3.0), (0.95, 9.0), (0.90, 5.0), (0.80, 1.0)]
    assert len(await store.top(2, "mnist")) == 2


async def test_a_board_gets_a_new_token_only_when_its_entries_change(store: JobStore) -> None:
    assert await store.board_token("mnist") is None
    for seed in range(LEADERBOARD_SIZE):
        doc = job_doc(300 + seed)
        doc.update(state="SUCCEEDED", result=result(0.5 + seed / 1000, 1.0))
        await store.rank(doc)
    full = await store.board_token("mnist")
    assert full is not None
    worse = job_doc(400)
    worse.update(state="SUCCEEDED", result=result(0.1, 1.0))
    await store.rank(worse)  # a full board it does not make: nothing written
    assert await store.board_token("mnist") == full
    better = job_doc(401)
    better.update(state="SUCCEEDED", result=result(0.9, 1.0))
    await store.rank(better)
    assert await store.board_token("mnist") not in (None, full)
    assert await store.board_token("mnist/cnn") not in (None, full)


async def test_the_leaderboard_keeps_only_the_best(store: JobStore) -> None:
    for seed in range(LEADERBOARD_SIZE + 5):
        doc = job_doc(100 + seed)
        doc.update(state="SUCCEEDED", result=result(seed / 1000, 1.0))
        await store.rank(doc)
    # The dataset's board and its dataset and model's: each holds only its best.
    for board in ("mnist", "mnist/cnn"):
        assert await store.leaderboard.count_documents({"board": board}) == LEADERBOARD_SIZE
    assert await store.leaderboard.count_documents({}) == 2 * LEADERBOARD_SIZE
    top = await store.top(LEADERBOARD_SIZE, "mnist")
    assert top[-1]["result"]["test_accuracy"] == 5 / 1000
    assert len(await store.leaderboard_ids()) == LEADERBOARD_SIZE


class LeaderboardWrites(StartedCommands):
    """The commands a client sends that write to the leaderboard."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: CommandStartedEvent) -> None:
        name = event.command_name
        if name in ("insert", "update", "delete") and event.command[name] == "leaderboard":
            self.names.append(name)


async def test_a_success_below_a_full_board_writes_nothing_to_it(mongo_uri: str) -> None:
    writes = LeaderboardWrites()
    async with listened_store(mongo_uri, writes) as store:
        for seed in range(LEADERBOARD_SIZE):
            doc = job_doc(600 + seed)
            doc.update(state="SUCCEEDED", result=result(0.5 + seed / 1000, 1.0))
            await store.rank(doc)
        before = [d["_id"] for d in await store.top(LEADERBOARD_SIZE, "mnist")]
        writes.names.clear()

        worse = job_doc(700)
        worse.update(state="SUCCEEDED", result=result(0.5, 2.0))  # the last's, but slower
        await store.rank(worse)
        assert writes.names == []
        assert [d["_id"] for d in await store.top(LEADERBOARD_SIZE, "mnist")] == before

        better = job_doc(701)
        better.update(state="SUCCEEDED", result=result(0.9, 1.0))
        await store.rank(better)
        await store.rank(better)  # a success told twice
        top = [d["_id"] for d in await store.top(LEADERBOARD_SIZE + 1, "mnist")]
        assert top == [better["_id"], *before[:-1]]
        for board in ("mnist", "mnist/cnn"):
            assert await store.leaderboard.count_documents({"board": board}) == LEADERBOARD_SIZE

        # An entry told again with a lower rank moves down, and out once a better comes.
        better.update(result=result(0.1, 1.0))
        await store.rank(better)
        top = [d["_id"] for d in await store.top(LEADERBOARD_SIZE + 1, "mnist")]
        assert top == [*before[:-1], better["_id"]]
        await store.rank(worse)
        top = [d["_id"] for d in await store.top(LEADERBOARD_SIZE + 1, "mnist")]
        assert top == [*before[:-1], worse["_id"]]


async def test_each_dataset_and_model_has_its_own_leaderboard(store: JobStore) -> None:
    jobs = [
        (on_dataset(300, "mnist"), 0.99),
        (on_dataset(301, "mnist", "mlp"), 0.97),
        (on_dataset(302, "fashion-mnist"), 0.91),
        (on_dataset(303, "fashion-mnist", "mlp"), 0.88),
        (on_dataset(304, "fashion-mnist", "mlp"), 0.89),
    ]
    for doc, accuracy in jobs:
        doc.update(state="SUCCEEDED", result=result(accuracy, 1.0))
        await store.rank(doc)

    def accuracies(top: list[Document]) -> list[float]:
        return [d["result"]["test_accuracy"] for d in top]

    assert accuracies(await store.top(10, "mnist")) == [0.99, 0.97]
    assert accuracies(await store.top(10, "mnist", "mlp")) == [0.97]
    assert accuracies(await store.top(10, "fashion-mnist")) == [0.91, 0.89, 0.88]
    assert accuracies(await store.top(10, "fashion-mnist", "cnn")) == [0.91]
    assert accuracies(await store.top(10, "fashion-mnist", "mlp")) == [0.89, 0.88]
    assert await store.leaderboard_ids() == {str(doc["_id"]) for doc, _ in jobs}


async def test_one_datasets_jobs_never_push_anothers_off(store: JobStore) -> None:
    fashion = on_dataset(400, "fashion-mnist")
    fashion.update(state="SUCCEEDED", result=result(0.5, 1.0))
    await store.rank(fashion)
    for seed in range(LEADERBOARD_SIZE + 3):
        doc = on_dataset(500 + seed, "mnist")
        doc.update(state="SUCCEEDED", result=result(0.9 + seed / 10000, 1.0))
        await store.rank(doc)
    assert [d["_id"] for d in await store.top(10, "fashion-mnist")] == [fashion["_id"]]
    assert await store.leaderboard.count_documents({"board": "mnist"}) == LEADERBOARD_SIZE
    assert fashion["_id"] in await store.leaderboard_ids()


async def test_jobs_ranked_before_per_dataset_boards_are_migrated(store: JobStore) -> None:
    # A database of the mixed leaderboard: its entries are the job documents themselves.
    await store.migrations.delete_many({})
    await store.leaderboard.drop_indexes()
    await store.leaderboard.create_index(
        [("result.test_accuracy", -1), ("result.training_seconds", 1), ("_id", 1)]
    )
    docs = []
    for seed, (dataset, accuracy) in enumerate([("mnist", 0.98), ("fashion-mnist", 0.9)]):
        doc = on_dataset(600 + seed, dataset)
        doc.update(state="SUCCEEDED", result=result(accuracy, 2.0), end_time=now())
        await store.insert(doc)
        await store.leaderboard.insert_one(doc)
        docs.append(doc)
    # One that the mixed board had already pushed off: it belongs on its dataset's.
    off = on_dataset(602, "fashion-mnist", "mlp")
    off.update(state="SUCCEEDED", result=result(0.7, 2.0), end_time=now())
    await store.insert(off)
    unfinished = on_dataset(603, "fashion-mnist")
    await store.insert(unfinished)

    await store.ensure_indexes()
    assert [d["_id"] for d in await store.top(10, "mnist")] == [docs[0]["_id"]]
    assert [d["_id"] for d in await store.top(10, "fashion-mnist")] == [docs[1]["_id"], off["_id"]]
    assert [d["_id"] for d in await store.top(10, "fashion-mnist", "mlp")] == [off["_id"]]
    assert await store.leaderboard.count_documents({"board": {"$exists": False}}) == 0
    # Done once: a second start changes nothing.
    await store.leaderboard.delete_many({"board": "mnist/cnn"})
    await store.ensure_indexes()
    assert await store.leaderboard.count_documents({"board": "mnist/cnn"}) == 0


async def test_jobs_in_a_state_are_counted_up_to_a_limit(store: JobStore) -> None:
    for seed in range(300, 304):
        await store.insert(job_doc(seed))
    assert await store.transition(str(job_doc(300)["_id"]), 1, RUNNING, {"attempts": 1}, attempt=0)
    assert await store.count_in_state(QUEUED, 10) == 3
    assert await store.count_in_state(QUEUED, 2) == 2
    assert await store.count_in_state(RUNNING, 10) == 1
    assert await store.count_in_state(SUCCEEDED, 10) == 0


async def examined(store: JobStore, query: dict[str, Any]) -> int:
    """The documents SecantusDB reads to answer `query` (it reads every match, limit or not)."""
    plan = await store.jobs.find(query).explain()
    return int(plan["executionStats"]["totalDocsExamined"])


async def succeeded(
    store: JobStore, hp: job_pb2.Hyperparameters, owner: str = "alice", ended: Any = None
) -> Document:
    hp = normalized(hp)
    key = canonical_key(hp)
    doc = new_job(job_id(key), key, hp, owner)
    doc.update(state="SUCCEEDED", result=result(0.9, 1.0), end_time=ended or now())
    await store.insert(doc)
    return doc


async def test_the_longest_shorter_success_of_a_lineage_reads_only_that_lineage(
    store: JobStore,
) -> None:
    for seed in range(40):  # other lineages: other seeds
        for epochs in (1, 2, 3):
            await succeeded(store, mlp(400 + seed, epochs=epochs))
    for epochs in (2, 5):
        await succeeded(store, mlp(399, epochs=epochs))
    old = await succeeded(store, mlp(399, epochs=3))
    del old["lineage"]  # stored before lineages were: never offered
    await store.jobs.replace_one({"_id": old["_id"]}, old)
    line = lineage(normalized(mlp(399)))

    found = await store.longest_succeeded(line, 5)
    assert found is not None and found["_id"] == job_id(
        canonical_key(normalized(mlp(399, epochs=2)))
    )
    assert await store.longest_succeeded(line, 2) is None
    assert (await store.longest_succeeded(line, 100) or {})["hyperparameters"]["epochs"] == 5
    query = {"lineage": line, "state": "SUCCEEDED", "hyperparameters.epochs": {"$lt": 100}}
    assert await examined(store, query) == 2, "an index lookup, not a scan of 123 jobs"


async def test_an_owners_latest_successes_are_found_in_a_window_that_holds_them(
    store: JobStore,
) -> None:
    t = now()
    ages = [0.5, 2, 3, 10, 40, 400]  # days
    docs = [
        await succeeded(store, mlp(500 + i), ended=t - timedelta(days=age))
        for i, age in enumerate(ages)
    ]
    for i in range(30):
        await succeeded(store, mlp(600 + i), owner="bob", ended=t - timedelta(days=3))
    ids = [d["_id"] for d in docs]

    assert await store.latest_successes("alice", 1, t) == {ids[0]}
    assert await store.latest_successes("alice", 3, t) == set(ids[:3])
    assert await store.latest_successes("alice", 5, t) == set(ids[:5])
    assert await store.latest_successes("alice", 20, t) == set(ids), "fewer than asked: all"
    assert await store.latest_successes("alice", 0, t) == set()
    # Three days back holds her latest three, and nothing from 10 days or more ago is read.
    window = {"owner": "alice", "state": "SUCCEEDED", "end_time": {"$gt": t - timedelta(days=4)}}
    assert await examined(store, window) == 3


async def test_only_the_models_that_are_due_are_read(store: JobStore) -> None:
    t = now()
    for i in range(30):  # young, or already looked at: not due
        await succeeded(store, mlp(700 + i), ended=t - timedelta(days=i % 3))
    due = [await succeeded(store, mlp(800 + i), ended=t - timedelta(days=40)) for i in range(3)]
    gone = await succeeded(store, mlp(900), ended=t - timedelta(days=50))
    await store.set_model_deleted(gone["_id"], t)
    kept = await succeeded(store, mlp(901), ended=t - timedelta(days=60))
    await store.review_model_at(kept["_id"], t + timedelta(days=1))

    found = await store.models_to_review(t - timedelta(days=30), t)
    assert sorted(d["_id"] for d in found) == sorted(d["_id"] for d in due)
    assert [d["_id"] for d in await store.models_to_review(t, t + timedelta(days=2))].count(
        kept["_id"]
    ) == 1, "a kept one is due again at its time"
    first = {
        "state": "SUCCEEDED",
        "model_review": None,
        "model_deleted": None,
        "end_time": {"$lt": t - timedelta(days=30)},
    }
    assert await examined(store, first) == 3
    assert await examined(store, {"state": "SUCCEEDED", "model_review": {"$lte": t}}) == 0


async def test_the_embedded_database_is_written_without_retryable_writes(store: JobStore) -> None:
    """SecantusDB walks every retryable write's kept reply on each write (tuner/stack.py)."""
    assert store.client.options.retry_writes is False
