"""Dispatcher: what the scheduler publishes to NATS, against a real nats-server and JobStore."""

from __future__ import annotations

import asyncio

import pytest

from scheduler.dispatch import Dispatcher
from store.documents import Document, job_from
from store.jobs import JobStore
from tests.support.documents import job_doc
from tests.support.servers import Nats, listening
from tuner.core import states, streams
from tuner.core.streams import QueuePolicy
from tuner.v1 import event_pb2, job_pb2


async def stored(store: JobStore, seed: int) -> Document:
    doc = job_doc(seed)
    assert await store.insert(doc)
    got = await store.get(doc["_id"])
    assert got is not None
    return got


async def queue_length(nats: Nats) -> int:
    return (await nats.js.stream_info(streams.JOBS_STREAM)).state.messages


async def test_dispatch_queues_the_run_and_records_its_sequence(
    store: JobStore, nats: Nats
) -> None:
    doc = await stored(store, 1)
    await Dispatcher(nats.nc, nats.js, store).dispatch(doc)

    after = await store.get(doc["_id"])
    assert after is not None
    sequence = after["dispatch_sequence"]
    assert sequence > 0
    msg = await nats.js.get_msg(streams.JOBS_STREAM, sequence)
    assert msg.subject == streams.JOBS_SUBJECT
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == f"{doc['_id']}.1"
    assert msg.data is not None
    request = event_pb2.TrainRequest.FromString(msg.data)
    assert request == event_pb2.TrainRequest(
        job_id=doc["_id"], run=1, hyperparameters=job_from(doc).hyperparameters
    )


async def test_a_retried_dispatch_is_not_queued_twice(store: JobStore, nats: Nats) -> None:
    doc = await stored(store, 2)
    dispatcher = Dispatcher(nats.nc, nats.js, store)
    await dispatcher.dispatch(doc)
    first = await store.get(doc["_id"])
    await dispatcher.dispatch(doc)  # e.g. the reconciler, after a lost answer
    again = await store.get(doc["_id"])

    assert await queue_length(nats) == 1
    assert first is not None and again is not None
    assert again["dispatch_sequence"] == first["dispatch_sequence"]


async def test_the_next_run_is_queued_again(store: JobStore, nats: Nats) -> None:
    doc = await stored(store, 3)
    dispatcher = Dispatcher(nats.nc, nats.js, store)
    await dispatcher.dispatch(doc)
    assert await store.transition(doc["_id"], 1, states.FAILED, {"error": "boom"})
    assert await store.requeue(doc["_id"], 1, "bob")
    second = await store.get(doc["_id"])
    assert second is not None
    await dispatcher.dispatch(second)

    assert await queue_length(nats) == 2
    after = await store.get(doc["_id"])
    assert after is not None
    msg = await nats.js.get_msg(streams.JOBS_STREAM, after["dispatch_sequence"])
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == f"{doc['_id']}.2"


async def test_announce_publishes_the_job_as_it_is_once(store: JobStore, nats: Nats) -> None:
    doc = await stored(store, 4)
    dispatcher = Dispatcher(nats.nc, nats.js, store)
    await dispatcher.announce(doc)
    await dispatcher.announce(doc)  # the same state again: dropped

    subject = streams.events_subject(doc["_id"], 1)
    info = await nats.js.stream_info(streams.EVENTS_STREAM, subjects_filter=subject)
    assert info.state.messages == 1
    msg = await nats.js.get_last_msg(streams.EVENTS_STREAM, subject)
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == f"{doc['_id']}.1.0.QUEUED"
    assert msg.data is not None
    event = event_pb2.JobEvent.FromString(msg.data)
    assert (event.job_id, event.run, event.attempt) == (doc["_id"], 1, 0)
    assert event.WhichOneof("kind") == "state_changed"
    assert event.state_changed.job == job_from(doc)
    assert event.time.seconds > 0

    assert await store.transition(doc["_id"], 1, states.RUNNING, {"attempts": 1}, attempt=0)
    running = await store.get(doc["_id"])
    assert running is not None
    await dispatcher.announce(running)
    msg = await nats.js.get_last_msg(streams.EVENTS_STREAM, subject)
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == f"{doc['_id']}.1.1.RUNNING"
    assert msg.data is not None
    assert event_pb2.JobEvent.FromString(msg.data).state_changed.job.state == (
        job_pb2.JOB_STATE_RUNNING
    )


async def test_withdraw_deletes_the_queued_message_and_sends_the_notice(
    store: JobStore, nats: Nats
) -> None:
    doc = await stored(store, 5)
    dispatcher = Dispatcher(nats.nc, nats.js, store)
    await dispatcher.dispatch(doc)
    queued = await store.get(doc["_id"])
    assert queued is not None
    async with listening(nats.nc, streams.cancel_subject(doc["_id"])) as heard:
        await dispatcher.withdraw(queued)
        notice = await asyncio.wait_for(heard.get(), timeout=5)
        # Withdrawn again, or taken by a trainer meanwhile: the delete fails quietly.
        await dispatcher.withdraw(queued)
        await asyncio.wait_for(heard.get(), timeout=5)

    assert await queue_length(nats) == 0
    assert event_pb2.JobCancellation.FromString(notice.data) == event_pb2.JobCancellation(
        job_id=doc["_id"], run=1
    )


async def test_withdrawing_a_job_never_queued_still_sends_the_notice(
    store: JobStore, nats: Nats
) -> None:
    doc = await stored(store, 6)
    other = await stored(store, 7)
    dispatcher = Dispatcher(nats.nc, nats.js, store)
    await dispatcher.dispatch(other)
    async with listening(nats.nc, streams.cancel_subject(doc["_id"])) as heard:
        await dispatcher.withdraw(doc)  # dispatch_sequence 0
        notice = await asyncio.wait_for(heard.get(), timeout=5)

    assert event_pb2.JobCancellation.FromString(notice.data).job_id == doc["_id"]
    assert await queue_length(nats) == 1, "the other job's message stays"


async def test_an_announcement_nats_did_not_take_is_made_later(store: JobStore, nats: Nats) -> None:
    doc = await stored(store, 6)
    dispatcher = Dispatcher(nats.nc, nats.js, store)
    await nats.js.delete_stream(streams.EVENTS_STREAM)  # nothing takes the publish now
    with pytest.raises(Exception):  # noqa: B017 - whatever nats-py raises for it
        await dispatcher.announce(doc)
    await streams.ensure_streams(nats.js, QueuePolicy())
    await dispatcher.announce_missed()

    subject = streams.events_subject(doc["_id"], 1)
    msg = await nats.js.get_last_msg(streams.EVENTS_STREAM, subject)
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == f"{doc['_id']}.1.0.QUEUED"
    await dispatcher.announce_missed()  # nothing left to announce
    info = await nats.js.stream_info(streams.EVENTS_STREAM, subjects_filter=subject)
    assert info.state.messages == 1
