"""Sweeps are driven by recorded job news, not by a clock: a new sweep queues its first
trials at once, and the next trial is queued as soon as one ends, whichever scheduler
replica recorded the end. The drivers' slow rounds are an hour apart here (after the
first, at start), so nothing these tests wait for can come from a round.
Against real NATS and SecantusDB, two replicas in process."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from google.protobuf.message import Message
from nats.aio.client import Client

from scheduler.auth import current_user
from scheduler.dispatch import Dispatcher
from scheduler.jobs import Jobs
from scheduler.recorder import Recorder
from scheduler.sweeps import driver as driving
from scheduler.sweeps.announce import Announcer
from scheduler.sweeps.driver import SweepDriver
from scheduler.sweeps.service import SweepService
from store.documents import Document
from store.jobs import JobStore
from store.sweeps import SweepStore
from tests.support.calls import Context
from tuner.core import states, streams
from tuner.core.streams import QueuePolicy
from tuner.sweep_spec import parse
from tuner.v1 import event_pb2, job_pb2, sweep_pb2

HOUR = 3600.0
SPEC = """
    strategy: random
    max_trials: 4
    parallelism: 2
    sampler_seed: 7
    space: {epochs: [1], learning_rate: {min: 0.0001, max: 0.1, log: true},
            batch_size: [64, 128, 256], models: [mlp]}
"""


@dataclass
class Replica:
    """One scheduler's sweep parts: its own NATS connection, dispatcher, driver, service."""

    name: str
    nc: Client
    jobs: Jobs
    recorder: Recorder
    driver: SweepDriver
    service: SweepService
    stopping: asyncio.Event
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(self.task, timeout=10)


@dataclass
class Cluster:
    store: JobStore
    sweeps: SweepStore
    start: Callable[[str, float], Awaitable[Replica]]


@pytest.fixture
async def cluster(nats_url: str, mongo_uri: str) -> AsyncIterator[Cluster]:
    database = f"driving_{uuid.uuid4().hex[:12]}"
    store = JobStore.connect(mongo_uri, database)
    await store.ensure_indexes()
    sweeps = SweepStore(store.client, database)
    await sweeps.ensure_indexes()
    replicas: list[Replica] = []

    async def start(name: str, every: float) -> Replica:
        nc = await streams.connect(nats_url, f"driving-test-{name}")
        js = nc.jetstream()
        await streams.ensure_streams(js, QueuePolicy())
        dispatcher = Dispatcher(nc, js, store)
        jobs = Jobs(store, dispatcher, max_active_per_user=100)
        announcer = Announcer(js, sweeps)
        driver = SweepDriver(sweeps, store, jobs, announcer, name, every=every)
        await driver.listen(nc)
        stopping = asyncio.Event()
        task = asyncio.create_task(driver.run(stopping))
        service = SweepService(sweeps, driver, announcer, js)
        replica = Replica(
            name, nc, jobs, Recorder(js, store, dispatcher), driver, service, stopping, task
        )
        replicas.append(replica)
        return replica

    current_user.set("ann")
    try:
        yield Cluster(store, sweeps, start)
    finally:
        for replica in replicas:
            replica.stopping.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(replica.task, timeout=10)
            await replica.nc.close()
        await store.close()


async def create(replica: Replica, spec: str = SPEC) -> str:
    request = sweep_pb2.CreateSweepRequest(spec=parse(spec))
    response = await replica.service.CreateSweep(request, Context())  # type: ignore[arg-type]
    return response.sweep.id


async def until(
    sweeps: SweepStore, sweep_id: str, what: str, ok: Callable[[Document], bool]
) -> Document:
    """The sweep as stored once `ok` holds, within 10 s (a round would take an hour)."""
    deadline = time.monotonic() + 10
    while True:
        doc = await sweeps.get(sweep_id)
        assert doc is not None
        if ok(doc):
            return doc
        assert time.monotonic() < deadline, f"{what}: not within 10 s: {doc['trials']}"
        await asyncio.sleep(0.02)


def trial_states(doc: Document) -> list[int]:
    return [states.of(t) for t in doc["trials"]]


async def cancel(replica: Replica, store: JobStore, trial: Document) -> None:
    job = await store.get(trial["job_id"])
    assert job is not None
    await replica.jobs.cancel(job, "cancelled by the test")


async def succeed(replica: Replica, trial: Document, accuracy: float) -> None:
    """A trainer's reports of the trial's job, recorded by `replica`'s recorder."""
    jid = trial["job_id"]
    started = event_pb2.JobEvent(
        job_id=jid, run=1, attempt=1, started=event_pb2.JobStarted(trainer="trainer-1")
    )
    done = event_pb2.JobEvent(
        job_id=jid,
        run=1,
        attempt=1,
        succeeded=job_pb2.Result(test_accuracy=accuracy, device="cpu"),
    )
    for event in (started, done):
        await replica.recorder.apply(event)


async def jobs_of(store: JobStore) -> int:
    return await store.jobs.count_documents({"owner": "ann"})


async def test_trials_follow_the_recorded_endings_of_any_replica(cluster: Cluster) -> None:
    a = await cluster.start("replica-a", HOUR)
    b = await cluster.start("replica-b", HOUR)
    sweep_id = await create(a)
    doc = await until(cluster.sweeps, sweep_id, "the first pair", lambda d: len(d["trials"]) == 2)
    assert trial_states(doc) == [states.QUEUED, states.QUEUED]
    # Exactly one drives it (the first to claim it); the other records each ending here.
    driver = doc["driver"]
    if driver == "replica-b":
        a, b = b, a
    assert driver == a.name
    await succeed(b, doc["trials"][0], 0.9)
    doc = await until(cluster.sweeps, sweep_id, "trial 3", lambda d: len(d["trials"]) == 3)
    assert trial_states(doc) == [states.SUCCEEDED, states.QUEUED, states.QUEUED]
    await cancel(b, cluster.store, doc["trials"][1])
    doc = await until(cluster.sweeps, sweep_id, "trial 4", lambda d: len(d["trials"]) == 4)
    assert trial_states(doc) == [states.SUCCEEDED, states.CANCELLED, states.QUEUED, states.QUEUED]

    for trial in doc["trials"][2:]:
        await succeed(b, trial, 0.8)
    doc = await until(
        cluster.sweeps,
        sweep_id,
        "the end",
        lambda d: states.sweep_of(d) == states.SWEEP_SUCCEEDED,
    )
    assert doc["driver"] == driver
    assert [t["number"] for t in doc["trials"]] == [1, 2, 3, 4]
    assert await jobs_of(cluster.store) == 4, "a trial was launched twice"


async def test_another_replica_takes_over_a_sweep_whose_driver_died(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driving, "LEASE_SECONDS", 1.0)
    a = await cluster.start("replica-a", HOUR)
    sweep_id = await create(a)
    doc = await until(cluster.sweeps, sweep_id, "the first pair", lambda d: len(d["trials"]) == 2)
    await a.stop()  # its lease runs out; it never renews it again

    b = await cluster.start("replica-b", 0.2)
    await cancel(a, cluster.store, doc["trials"][0])
    doc = await until(cluster.sweeps, sweep_id, "trial 3 by b", lambda d: len(d["trials"]) == 3)
    assert doc["driver"] == "replica-b"
    for trial in doc["trials"][1:]:
        await cancel(b, cluster.store, trial)
    doc = await until(cluster.sweeps, sweep_id, "trial 4", lambda d: len(d["trials"]) == 4)
    await cancel(b, cluster.store, doc["trials"][3])
    doc = await until(
        cluster.sweeps,
        sweep_id,
        "the end",
        lambda d: states.sweep_of(d) == states.SWEEP_SUCCEEDED,
    )
    assert [t["number"] for t in doc["trials"]] == [1, 2, 3, 4]
    assert await jobs_of(cluster.store) == 4, "a trial was launched twice"


async def test_a_trainers_report_of_an_end_frees_its_place_before_it_is_recorded(
    cluster: Cluster,
) -> None:
    a = await cluster.start("replica-a", HOUR)
    sweep_id = await create(a)
    doc = await until(cluster.sweeps, sweep_id, "the first pair", lambda d: len(d["trials"]) == 2)
    first = doc["trials"][0]
    await a.recorder.apply(
        event_pb2.JobEvent(
            job_id=first["job_id"],
            run=1,
            attempt=1,
            started=event_pb2.JobStarted(trainer="trainer-1"),
        )
    )
    # The trainer's success goes out on the job's subject; no recorder runs to record it.
    report = event_pb2.JobEvent(
        job_id=first["job_id"],
        run=1,
        attempt=1,
        succeeded=job_pb2.Result(test_accuracy=0.9, device="cpu"),
    )
    await a.nc.publish(streams.events_subject(first["job_id"], 1), report.SerializeToString())
    doc = await until(cluster.sweeps, sweep_id, "trial 3", lambda d: len(d["trials"]) == 3)
    job = await cluster.store.get(first["job_id"])
    assert job is not None and states.of(job) == states.RUNNING, "recorded meanwhile"
    assert trial_states(doc)[2] == states.QUEUED

    await a.recorder.apply(report)  # recorded now: the sweep follows, launching nothing more
    doc = await until(
        cluster.sweeps,
        sweep_id,
        "trial 1 recorded",
        lambda d: trial_states(d)[0] == states.SUCCEEDED,
    )
    assert len(doc["trials"]) == 3


def training_reports(job: str, epochs: int) -> list[event_pb2.JobEvent]:
    """A trial's report mid-training, then its last of training: a 2-epoch trial's epochs
    (its accuracy is known at the last), a 1-epoch trial's progress before it evaluates."""
    reports: list[tuple[str, Message]] = (
        [("epoch_completed", job_pb2.EpochMetrics(epoch=e, attempt=1)) for e in (1, 2)]
        if epochs == 2
        else [("progress", job_pb2.Progress(step=step, total_steps=938)) for step in (469, 938)]
    )
    events = []
    for kind, report in reports:
        event = event_pb2.JobEvent(job_id=job, run=1, attempt=1)
        getattr(event, kind).CopyFrom(report)
        events.append(event)
    return events


@pytest.mark.parametrize("epochs", [2, 1], ids=["epoch", "step"])
async def test_the_last_report_of_training_frees_its_place_and_an_earlier_does_not(
    cluster: Cluster, epochs: int
) -> None:
    """The next trial is queued as soon as the trainer reports its last training step or
    epoch, while the trainer still evaluates, stores the model and reports the success."""
    a = await cluster.start("replica-a", HOUR)
    sweep_id = await create(a, SPEC.replace("epochs: [1]", f"epochs: [{epochs}]"))
    doc = await until(cluster.sweeps, sweep_id, "the first pair", lambda d: len(d["trials"]) == 2)
    first = doc["trials"][0]
    earlier, last = training_reports(first["job_id"], epochs)
    subject = streams.events_subject(first["job_id"], 1)
    await a.nc.publish(subject, earlier.SerializeToString())
    await a.nc.flush()
    await asyncio.sleep(0.5)  # heard, and stepped on: still two trials
    stored = await cluster.sweeps.get(sweep_id)
    assert stored is not None and len(stored["trials"]) == 2, "freed before training ended"
    await a.nc.publish(subject, last.SerializeToString())
    doc = await until(cluster.sweeps, sweep_id, "trial 3", lambda d: len(d["trials"]) == 3)
    assert trial_states(doc)[:1] == [states.QUEUED], "nothing recorded meanwhile"
