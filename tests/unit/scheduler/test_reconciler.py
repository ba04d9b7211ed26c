"""The reconciler against real NATS and SecantusDB: no RUNNING job is left without an owner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from nats.aio.client import Client

from scheduler.dispatch import Dispatcher
from scheduler.reconciler import Reconciler
from scheduler.recorder import Recorder
from store.documents import new_job
from store.jobs import JobStore
from tests.support.servers import Nats
from tuner.core import states, streams
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.v1 import event_pb2, job_pb2


@dataclass
class Parts:
    nc: Client
    store: JobStore
    dispatcher: Dispatcher
    recorder: Recorder
    reconciler: Reconciler


@pytest.fixture
def parts(nats: Nats, store: JobStore) -> Parts:
    dispatcher = Dispatcher(nats.nc, nats.js, store)
    recorder = Recorder(nats.js, store, dispatcher)
    # An ack wait of 0: every running job counts as quiet at once.
    reconciler = Reconciler(nats.js, store, dispatcher, recorder, ack_wait_seconds=0.0)
    return Parts(nats.nc, store, dispatcher, recorder, reconciler)


async def running_job(parts: Parts, leave_queue: bool) -> str:
    """A job a trainer started; its queue message gone (acked) if `leave_queue`."""
    hp = normalized(
        job_pb2.Hyperparameters(
            epochs=1, learning_rate=0.01, batch_size=64, seed=uuid.uuid4().int % 2**62
        )
    )
    key = canonical_key(hp)
    jid = job_id(key)
    assert await parts.store.insert(new_job(jid, key, hp, "ann"))
    doc = await parts.store.get(jid)
    assert doc is not None
    await parts.dispatcher.dispatch(doc)
    started = event_pb2.JobEvent(
        job_id=jid, run=1, attempt=1, started=event_pb2.JobStarted(trainer="t1")
    )
    await publish(parts, started)
    await parts.recorder.apply(started)
    if leave_queue:
        doc = await parts.store.get(jid)
        assert doc is not None
        await parts.nc.jetstream().delete_msg(streams.JOBS_STREAM, doc["dispatch_sequence"])
    return jid


async def publish(parts: Parts, event: event_pb2.JobEvent) -> None:
    event.time.GetCurrentTime()
    subject = streams.events_subject(event.job_id, event.run)
    await parts.nc.jetstream().publish(subject, event.SerializeToString())


async def state(parts: Parts, jid: str) -> int:
    doc = await parts.store.get(jid)
    assert doc is not None
    return states.of(doc)


async def test_a_success_in_the_stream_but_never_recorded_is_recorded(parts: Parts) -> None:
    jid = await running_job(parts, leave_queue=True)
    await publish(
        parts,
        event_pb2.JobEvent(
            job_id=jid, run=1, attempt=1, succeeded=job_pb2.Result(test_accuracy=0.9)
        ),
    )
    await parts.reconciler.round()
    assert await state(parts, jid) == states.SUCCEEDED


async def test_a_job_that_left_the_queue_without_a_result_fails_saying_so(parts: Parts) -> None:
    jid = await running_job(parts, leave_queue=True)
    await parts.reconciler.round()
    doc = await parts.store.get(jid)
    assert doc is not None and states.of(doc) == states.FAILED
    assert doc["error"].startswith("lost: attempt 1 left the queue without reporting a result")


async def test_an_older_attempts_success_counts_once_the_queue_message_is_gone(
    parts: Parts,
) -> None:
    """Attempt 1 was redelivered during a stall and succeeded after all; its trainer acked the
    message, so attempt 2, which the recorder waits for, is redelivered by nothing."""
    jid = await running_job(parts, leave_queue=False)
    second = event_pb2.JobEvent(
        job_id=jid, run=1, attempt=2, started=event_pb2.JobStarted(trainer="t2")
    )
    await publish(parts, second)
    await parts.recorder.apply(second)
    success = event_pb2.JobEvent(
        job_id=jid,
        run=1,
        attempt=1,
        succeeded=job_pb2.Result(test_accuracy=0.9),
        epochs=[job_pb2.EpochMetrics(epoch=1, test_accuracy=0.9, attempt=1)],
    )
    await publish(parts, success)
    await parts.recorder.apply(success)
    assert await state(parts, jid) == states.RUNNING, "the recorder waits for attempt 2"
    await parts.reconciler.round()
    assert await state(parts, jid) == states.RUNNING, "the message is still in the queue"

    doc = await parts.store.get(jid)
    assert doc is not None
    await parts.nc.jetstream().delete_msg(streams.JOBS_STREAM, doc["dispatch_sequence"])
    await parts.reconciler.round()
    doc = await parts.store.get(jid)
    assert doc is not None and states.of(doc) == states.SUCCEEDED
    assert doc["result"]["test_accuracy"] == pytest.approx(0.9)
    assert [(m["epoch"], m["attempt"]) for m in doc["history"]] == [(1, 1)]


async def test_a_job_a_live_trainer_says_it_trains_is_not_failed(parts: Parts) -> None:
    jid = await running_job(parts, leave_queue=True)
    on_it = Reconciler(
        parts.nc.jetstream(),
        parts.store,
        parts.dispatcher,
        parts.recorder,
        ack_wait_seconds=0.0,
        training=lambda job, run: (job, run) == (jid, 1),
    )
    await on_it.round()
    assert await state(parts, jid) == states.RUNNING
    await parts.reconciler.round()  # nobody says so: lost
    assert await state(parts, jid) == states.FAILED


async def test_a_job_still_in_the_queue_is_left_to_jetstream(parts: Parts) -> None:
    jid = await running_job(parts, leave_queue=False)
    await parts.reconciler.round()
    assert await state(parts, jid) == states.RUNNING


async def test_a_queued_job_never_published_is_queued(parts: Parts) -> None:
    seed = uuid.uuid4().int % 2**62
    hp = normalized(job_pb2.Hyperparameters(epochs=1, learning_rate=0.02, batch_size=32, seed=seed))
    key = canonical_key(hp)
    jid = job_id(key)
    doc = new_job(jid, key, hp, "ann")
    doc["update_time"] = doc["update_time"].replace(year=2020)
    assert await parts.store.insert(doc)
    await parts.reconciler.round()
    stored = await parts.store.get(jid)
    assert stored is not None and stored["dispatch_sequence"] > 0
