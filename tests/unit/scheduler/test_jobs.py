"""Jobs: submitting and cancelling, against a real JobStore and a real nats-server."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from scheduler.dispatch import Dispatcher
from scheduler.jobs import Jobs, Refused
from store.jobs import JobStore
from tests.support.hyperparameters import mlp
from tests.support.servers import Nats, listening
from tuner.core import states, streams
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.v1 import event_pb2, job_pb2


def jobs(store: JobStore, nats: Nats, max_active: int = 100) -> Jobs:
    return Jobs(store, Dispatcher(nats.nc, nats.js, store), max_active)


def hp(seed: int) -> job_pb2.Hyperparameters:
    return normalized(mlp(seed))


def id_of(seed: int) -> str:
    return job_id(canonical_key(hp(seed)))


async def queued(nats: Nats, sequence: int) -> tuple[event_pb2.TrainRequest, str]:
    """The train request queued at this sequence of TUNER_JOBS, and its message id."""
    msg = await nats.js.get_msg(streams.JOBS_STREAM, sequence)
    assert msg.data is not None and msg.headers is not None
    return event_pb2.TrainRequest.FromString(msg.data), msg.headers["Nats-Msg-Id"]


async def test_a_new_job_is_stored_and_queued_with_its_run_as_message_id(
    store: JobStore, nats: Nats
) -> None:
    doc, existed = await jobs(store, nats).submit(hp(1), "alice")

    assert not existed
    assert (doc["state"], doc["run"], doc["owner"], doc["attempts"]) == ("QUEUED", 1, "alice", 0)
    stored = await store.get(doc["_id"])
    assert stored is not None and stored["dispatch_sequence"] > 0
    request, message_id = await queued(nats, stored["dispatch_sequence"])
    assert message_id == f"{doc['_id']}.1"
    assert (request.job_id, request.run) == (doc["_id"], 1)
    assert request.hyperparameters == hp(1)
    info = await nats.js.stream_info(streams.JOBS_STREAM)
    assert info.state.messages == 1


async def test_a_duplicate_returns_the_job_as_it_is_and_queues_nothing(
    store: JobStore, nats: Nats
) -> None:
    first, _ = await jobs(store, nats).submit(hp(2), "alice")
    again, existed = await jobs(store, nats).submit(hp(2), "bob")

    assert existed
    assert again["_id"] == first["_id"]
    assert (again["owner"], again["run"]) == ("alice", 1), "the first submitter keeps it"
    info = await nats.js.stream_info(streams.JOBS_STREAM)
    assert info.state.messages == 1


@pytest.mark.parametrize("ending", [states.FAILED, states.CANCELLED], ids=states.name)
async def test_a_failed_or_cancelled_job_runs_again_as_run_2(
    store: JobStore, nats: Nats, ending: int
) -> None:
    first, _ = await jobs(store, nats).submit(hp(3), "alice")
    assert await store.transition(first["_id"], 1, ending, {"error": "boom"})

    doc, existed = await jobs(store, nats).submit(hp(3), "bob")

    assert not existed
    assert (doc["state"], doc["run"], doc["owner"], doc["error"]) == ("QUEUED", 2, "bob", "")
    stored = await store.get(doc["_id"])
    assert stored is not None
    request, message_id = await queued(nats, stored["dispatch_sequence"])
    assert message_id == f"{doc['_id']}.2"
    assert request.run == 2


async def test_a_succeeded_job_is_not_run_again(store: JobStore, nats: Nats) -> None:
    first, _ = await jobs(store, nats).submit(hp(4), "alice")
    assert await store.transition(first["_id"], 1, states.RUNNING, {"attempts": 1}, attempt=0)
    assert await store.transition(first["_id"], 1, states.SUCCEEDED, {}, attempt=1)

    doc, existed = await jobs(store, nats).submit(hp(4), "bob")

    assert existed
    assert (doc["state"], doc["run"]) == ("SUCCEEDED", 1)


async def test_past_max_active_a_new_job_is_refused_but_a_duplicate_is_not(
    store: JobStore, nats: Nats
) -> None:
    limited = jobs(store, nats, max_active=2)
    await limited.submit(hp(10), "alice")
    await limited.submit(hp(11), "alice")

    with pytest.raises(Refused) as raised:
        await limited.submit(hp(12), "alice")
    assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(raised.value).startswith("alice has 2 jobs queued or running, the most allowed")
    assert await store.get(id_of(12)) is None, "nothing stored"

    _, existed = await limited.submit(hp(10), "alice")
    assert existed, "a duplicate costs nothing"
    await limited.submit(hp(12), "bob")  # the limit is per user


async def test_cancelling_a_queued_job_withdraws_it_and_tells_its_trainer(
    store: JobStore, nats: Nats
) -> None:
    doc, _ = await jobs(store, nats).submit(hp(20), "alice")
    stored = await store.get(doc["_id"])
    assert stored is not None
    async with listening(nats.nc, streams.cancel_subject(doc["_id"])) as notices:
        cancelled = await jobs(store, nats).cancel(stored, "cancelled by alice")
        notice = await asyncio.wait_for(notices.get(), timeout=5)

    assert (cancelled["state"], cancelled["error"]) == ("CANCELLED", "cancelled by alice")
    assert cancelled["end_time"] is not None
    assert event_pb2.JobCancellation.FromString(notice.data) == event_pb2.JobCancellation(
        job_id=doc["_id"], run=1
    )
    info = await nats.js.stream_info(streams.JOBS_STREAM)
    assert info.state.messages == 0, "the queued message is gone"
    last = await nats.js.get_last_msg(streams.EVENTS_STREAM, streams.events_subject(doc["_id"], 1))
    assert last.data is not None
    event = event_pb2.JobEvent.FromString(last.data)
    assert event.state_changed.job.state == job_pb2.JOB_STATE_CANCELLED


@pytest.mark.parametrize("ending", sorted(states.TERMINAL), ids=states.name)
async def test_a_job_that_ended_cannot_be_cancelled(
    store: JobStore, nats: Nats, ending: int
) -> None:
    doc, _ = await jobs(store, nats).submit(hp(30 + ending), "alice")
    assert await store.transition(doc["_id"], 1, states.RUNNING, {"attempts": 1}, attempt=0)
    assert await store.transition(doc["_id"], 1, ending, {}, attempt=1)
    ended = await store.get(doc["_id"])
    assert ended is not None

    with pytest.raises(Refused) as raised:
        await jobs(store, nats).cancel(ended, "too late")
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert str(raised.value) == f"job_id: job {doc['_id']} is already {states.name(ending)}"
    after = await store.get(doc["_id"])
    assert after is not None and after["state"] == states.name(ending)
