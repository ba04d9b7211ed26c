"""The model retention against a real JobStore and nats-server: what it deletes, what it keeps,
and that a pass looks only at what is due."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from nats.js.errors import ObjectNotFoundError
from nats.js.object_store import ObjectStore

from scheduler.retention import Retention, RetentionPolicy
from store.documents import Document, now
from store.jobs import JobStore
from store.sweeps import SweepStore, new_sweep
from tests.support.hyperparameters import mlp
from tests.support.models import fresh_bucket, no_bucket, stored_job
from tests.support.servers import Nats
from tuner.core import states, streams
from tuner.v1 import sweep_pb2

DAY = timedelta(days=1)


async def with_objects(bucket: ObjectStore, doc: Document, device: str = "cpu") -> list[str]:
    """Puts the job's model in both formats and its run's final checkpoint; their names."""
    epochs = doc["hyperparameters"]["epochs"]
    names = [
        streams.model_object(doc["_id"], "state-dict"),
        streams.model_object(doc["_id"], "exported"),
        streams.checkpoint_object(doc["lineage"], device, epochs),
    ]
    for name in names:
        await bucket.put(name, f"{name} bytes".encode())
    return names


async def present(bucket: ObjectStore, names: list[str]) -> list[bool]:
    found = []
    for name in names:
        try:
            await bucket.get_info(name)
            found.append(True)
        except ObjectNotFoundError:
            found.append(False)
    return found


async def test_old_models_go_unless_on_the_leaderboard_or_among_the_owners_last(
    store: JobStore, sweeps: SweepStore, nats: Nats
) -> None:
    t = now()
    bucket = await fresh_bucket(nats.js)
    policy = RetentionPolicy(per_user=2, days=30)

    async def old(seed: int, days: int, **options: Any) -> Document:
        return await stored_job(store, mlp(seed, epochs=2), ended=t - days * DAY, **options)

    leader = await old(9001, 40)  # ranked: on the leaderboard
    a2 = await old(9002, 39, ranked=False)
    a3 = await old(9003, 38, ranked=False, device="cuda:0")
    a4 = await old(9004, 37, ranked=False)  # alice's second latest
    a5 = await stored_job(store, mlp(9005), ended=t - DAY, ranked=False)  # young
    bob = await old(9006, 50, owner="bob", ranked=False)  # bob's only one
    await stored_job(store, mlp(9007), states.FAILED, ended=t - 60 * DAY)
    objects = {
        doc["_id"]: await with_objects(bucket, doc, "cuda" if doc is a3 else "cpu")
        for doc in (leader, a2, a3, a4, a5, bob)
    }

    done = await Retention(store, nats.js, policy, sweeps).sweep(at=t)

    assert sorted(done.deleted) == sorted([a2["_id"], a3["_id"]])
    assert sorted(done.kept) == sorted([leader["_id"], a4["_id"], bob["_id"]])
    assert done.left == 0
    for doc in (a2, a3):
        assert await present(bucket, objects[doc["_id"]]) == [False] * 3
        stored = await store.get(doc["_id"])
        assert stored is not None and stored["model_deleted"] == t
        assert stored["model_review"] is None
    for doc in (leader, a4, a5, bob):
        assert await present(bucket, objects[doc["_id"]]) == [True] * 3
    for doc in (leader, a4, bob):
        stored = await store.get(doc["_id"])
        assert stored is not None and stored["model_review"] == t + DAY, "looked at again later"
    assert (await store.get(a5["_id"]) or {})["model_review"] is None, "not due yet"

    again = await Retention(store, nats.js, policy, sweeps).sweep(at=t + timedelta(hours=1))
    assert (again.deleted, again.kept, again.left) == ([], [], 0), "nothing due: nothing read"

    # Two more of alice's succeed: the 37-day-old one is no longer among her last two.
    await stored_job(store, mlp(9008), ended=t, ranked=False)
    await stored_job(store, mlp(9009), ended=t, ranked=False)
    later = await Retention(store, nats.js, policy, sweeps).sweep(at=t + 2 * DAY)
    assert later.deleted == [a4["_id"]]
    assert sorted(later.kept) == sorted([leader["_id"], bob["_id"]])
    assert await present(bucket, objects[a4["_id"]]) == [False] * 3
    assert await present(bucket, objects[leader["_id"]]) == [True] * 3


async def test_a_pass_deletes_at_most_its_share_and_leaves_the_rest(
    store: JobStore, sweeps: SweepStore, nats: Nats
) -> None:
    t = now()
    bucket = await fresh_bucket(nats.js)
    policy = RetentionPolicy(per_user=0, days=1, max_per_pass=2)
    docs = [
        await stored_job(store, mlp(9100 + i), ended=t - 2 * DAY, ranked=False) for i in range(3)
    ]
    for doc in docs:
        await with_objects(bucket, doc)
    retention = Retention(store, nats.js, policy, sweeps)

    first = await retention.sweep(at=t)
    second = await retention.sweep(at=t)

    assert (len(first.deleted), first.left) == (2, 1)
    assert (len(second.deleted), second.left) == (1, 0)
    assert sorted(first.deleted + second.deleted) == sorted(d["_id"] for d in docs)


async def test_without_a_bucket_the_expired_are_marked_all_the_same(
    store: JobStore, sweeps: SweepStore, nats: Nats
) -> None:
    t = now()
    await no_bucket(nats.js)
    doc = await stored_job(store, mlp(9200), ended=t - 31 * DAY, ranked=False, owner="dora")
    await stored_job(store, mlp(9201), ended=t, ranked=False, owner="dora")

    done = await Retention(store, nats.js, RetentionPolicy(per_user=1), sweeps).sweep(at=t)

    assert done.deleted == [doc["_id"]]
    assert (await store.get(doc["_id"]) or {})["model_deleted"] == t


async def test_the_loop_runs_every_interval_until_stopped(
    store: JobStore, sweeps: SweepStore, nats: Nats
) -> None:
    bucket = await fresh_bucket(nats.js)
    policy = RetentionPolicy(per_user=0, days=0, every_seconds=0.05)
    stopping = asyncio.Event()
    loop = asyncio.create_task(Retention(store, nats.js, policy, sweeps).run(stopping))
    try:
        doc = await stored_job(store, mlp(9300), ranked=False)
        names = await with_objects(bucket, doc)
        for _ in range(100):
            if not any(await present(bucket, names)):
                break
            await asyncio.sleep(0.05)
        assert await present(bucket, names) == [False] * 3
    finally:
        stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(loop, timeout=5)
    assert loop.done()


async def ended_sweep(sweeps: SweepStore, sweep_id: str, state: int, at: datetime) -> None:
    await sweeps.insert(new_sweep(sweep_id, sweep_pb2.SweepSpec(name=sweep_id), "alice"))
    if state != states.SWEEP_RUNNING:
        assert await sweeps.finish(sweep_id, state)
    await sweeps.sweeps.update_one({"_id": sweep_id}, {"$set": {"update_time": at}})


async def test_failed_and_cancelled_jobs_and_ended_sweeps_go_after_the_history_days(
    store: JobStore, sweeps: SweepStore, nats: Nats
) -> None:
    t = now()
    policy = RetentionPolicy(history_days=90, max_per_pass=2)  # a pass goes on past its batch

    async def job(seed: int, state: int, days: int) -> str:
        return str((await stored_job(store, mlp(seed), state, ended=t - days * DAY))["_id"])

    gone = [await job(9101, states.FAILED, 91), await job(9102, states.CANCELLED, 120)]
    gone += [await job(9103, states.FAILED, 200), await job(9104, states.CANCELLED, 95)]
    kept = [await job(9105, states.FAILED, 89), await job(9106, states.SUCCEEDED, 300)]
    kept += [await job(9107, states.QUEUED, 0), await job(9108, states.CANCELLED, 1)]
    for sweep_id, state, days in [
        ("old-done", states.SWEEP_SUCCEEDED, 100),
        ("old-cancelled", states.SWEEP_CANCELLED, 91),
        ("young-done", states.SWEEP_SUCCEEDED, 10),
        ("old-running", states.SWEEP_RUNNING, 100),  # a sweep runs until it ends
    ]:
        await ended_sweep(sweeps, sweep_id, state, t - days * DAY)

    retention = Retention(store, nats.js, policy, sweeps)
    assert await retention.expire_history(at=t) == (4, 2)

    for job_id in gone:
        assert await store.get(job_id) is None
    for job_id in kept:
        assert await store.get(job_id) is not None
    left = {d["_id"] for d in await sweeps.sweeps.find({}, {"_id": 1}).to_list()}
    assert left == {"young-done", "old-running"}
    assert await retention.expire_history(at=t) == (0, 0)
    # Kept forever at 0; a job requeued is young again.
    assert await Retention(store, nats.js, RetentionPolicy(history_days=0), sweeps).expire_history(
        at=t + 1000 * DAY
    ) == (0, 0)
    young = kept[0]
    doc = await store.get(young)
    assert doc is not None and await store.requeue(young, doc["run"], "alice")
    # 91 days after its failure by then, but queued again the day before.
    assert await retention.expire_history(at=t + 2 * DAY) == (0, 0)
    assert await store.get(young) is not None
