"""The recorder against real NATS and SecantusDB: the same record whatever order reports come in."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from nats.aio.client import Client
from pymongo.monitoring import CommandStartedEvent

from scheduler.dispatch import Dispatcher
from scheduler.fanout import replay
from scheduler.recorder import Recorder
from store import points
from store.documents import hyperparameters_from, job_from, new_job
from store.jobs import JobStore
from tests.support.servers import Nats
from tests.support.stores import StartedCommands, listened_store
from tuner.core import states, streams
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.v1 import event_pb2, job_pb2

EPOCHS = 2


@dataclass
class Parts:
    nc: Client
    store: JobStore
    dispatcher: Dispatcher
    recorder: Recorder


@pytest.fixture
def parts(nats: Nats, store: JobStore) -> Parts:
    dispatcher = Dispatcher(nats.nc, nats.js, store)
    return Parts(nats.nc, store, dispatcher, Recorder(nats.js, store, dispatcher))


async def queued_job(store: JobStore) -> str:
    hp = normalized(
        job_pb2.Hyperparameters(
            epochs=EPOCHS,
            learning_rate=0.001,
            batch_size=64,
            model=job_pb2.MODEL_MLP,
            seed=uuid.uuid4().int % 2**62,
        )
    )
    key = canonical_key(hp)
    assert await store.insert(new_job(job_id(key), key, hp, "ann"))
    return job_id(key)


def epoch(number: int) -> job_pb2.EpochMetrics:
    return job_pb2.EpochMetrics(
        epoch=number, train_loss=1.0 / number, test_loss=0.5 / number, test_accuracy=0.9
    )


def reports(jid: str, attempt: int = 1, accuracy: float = 0.97) -> list[event_pb2.JobEvent]:
    """A whole attempt's reports, in the order a trainer sends them."""
    out = [
        event_pb2.JobEvent(
            job_id=jid,
            run=1,
            attempt=attempt,
            started=event_pb2.JobStarted(trainer=f"trainer-{attempt}"),
        )
    ]
    out += [
        event_pb2.JobEvent(job_id=jid, run=1, attempt=attempt, epoch_completed=epoch(n))
        for n in range(1, EPOCHS + 1)
    ]
    out.append(
        event_pb2.JobEvent(
            job_id=jid,
            run=1,
            attempt=attempt,
            epochs=[epoch(n) for n in range(1, EPOCHS + 1)],
            succeeded=job_pb2.Result(test_accuracy=accuracy, device="cpu"),
        )
    )
    return out


async def announced(parts: Parts, jid: str) -> list[int]:
    """The states announced for the job's run 1, in stream order."""
    js = parts.nc.jetstream()
    subject = streams.events_subject(jid, 1)
    return [
        e.state_changed.job.state
        async for e in replay(js, subject, 0, idle=0.3)
        if e.WhichOneof("kind") == "state_changed"
    ]


async def assert_succeeded_once(parts: Parts, jid: str, attempts: int = 1) -> None:
    doc = await parts.store.get(jid)
    assert doc is not None
    assert states.of(doc) == states.SUCCEEDED
    assert doc["attempts"] == attempts
    assert [m["epoch"] for m in doc["history"]] == list(range(1, EPOCHS + 1))
    assert doc["trainer"] == f"trainer-{attempts}"
    ranked = await parts.store.leaderboard.count_documents({"job._id": jid})
    assert ranked == 2, "on its dataset's leaderboard and its dataset and model's"
    filed, _ = await points.latest(parts.store, ["mnist"], lambda hp: True, 100)
    assert [d["_id"] for d in filed].count(jid) == 1, "its analysis point, once"
    said = await announced(parts, jid)
    assert said.count(states.SUCCEEDED) == 1, said
    assert said.index(states.RUNNING) < said.index(states.SUCCEEDED), said


async def test_reports_in_order_make_one_success(parts: Parts) -> None:
    jid = await queued_job(parts.store)
    for event in reports(jid):
        await parts.recorder.apply(event)
    await assert_succeeded_once(parts, jid)


@pytest.mark.parametrize("order", list(itertools.permutations(range(EPOCHS + 2))))
async def test_any_order_of_reports_makes_the_same_record(
    parts: Parts, order: Sequence[int]
) -> None:
    jid = await queued_job(parts.store)
    events = reports(jid)
    for index in order:
        await parts.recorder.apply(events[index])
    await assert_succeeded_once(parts, jid)


async def test_two_replicas_recording_one_job_at_once(parts: Parts) -> None:
    other = Recorder(parts.nc.jetstream(), parts.store, parts.dispatcher)
    for _ in range(5):
        jid = await queued_job(parts.store)
        events = reports(jid)
        await asyncio.gather(
            *(
                recorder.apply(event)
                for recorder, event in zip(itertools.cycle([parts.recorder, other]), events)
            )
        )
        await assert_succeeded_once(parts, jid)


class Begins(StartedCommands):
    """The writes that begin an attempt: updates to RUNNING fenced on an older attempt."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "update":
            for update in event.command["updates"]:
                fence = update["q"].get("attempts", {})
                if update["u"].get("$set", {}).get("state") == "RUNNING" and "$lte" in fence:
                    self.count += 1


async def test_an_attempt_once_read_as_begun_is_not_begun_again(mongo_uri: str, nats: Nats) -> None:
    begins = Begins()
    async with listened_store(mongo_uri, begins) as store:
        dispatcher = Dispatcher(nats.nc, nats.js, store)
        parts = Parts(nats.nc, store, dispatcher, Recorder(nats.js, store, dispatcher))
        jid = await queued_job(store)
        for event in reports(jid):
            await parts.recorder.apply(event)
        await assert_succeeded_once(parts, jid)
        assert begins.count == 1, "the started report begins it; the others know"
        # Another replica that has not read it begins again, as before: a write that misses.
        other = Recorder(nats.js, store, dispatcher)
        await other.apply(reports(jid)[1])
        assert begins.count == 2
        await assert_succeeded_once(parts, jid)


@pytest.mark.parametrize("first", ["epoch_completed", "succeeded"])
async def test_a_job_deleted_and_submitted_anew_is_begun_again(parts: Parts, first: str) -> None:
    """A recorder that read attempt 1 of the old job running must not take the new one's
    attempt 1 as begun: its reports, the started one last, still make one success."""
    jid = await queued_job(parts.store)
    for event in reports(jid):
        await parts.recorder.apply(event)
    old = await parts.store.get(jid)
    assert old is not None
    await parts.store.jobs.delete_one({"_id": jid})  # the retention, say
    hp = hyperparameters_from(old["hyperparameters"])
    assert await parts.store.insert(new_job(jid, canonical_key(hp), hp, "ann"))
    events = reports(jid, accuracy=0.91)
    firsts = [e for e in events if e.WhichOneof("kind") == first]
    for event in [*firsts, *(e for e in events if e not in firsts)]:
        await parts.recorder.apply(event)
    doc = await parts.store.get(jid)
    assert doc is not None and states.of(doc) == states.SUCCEEDED
    assert doc["result"]["test_accuracy"] == pytest.approx(0.91)
    assert [m["epoch"] for m in doc["history"]] == list(range(1, EPOCHS + 1))
    assert doc["trainer"] == "trainer-1"


async def test_a_redelivered_success_is_recorded_and_announced_once(parts: Parts) -> None:
    jid = await queued_job(parts.store)
    events = reports(jid)
    for event in [*events, events[-1], events[1]]:
        await parts.recorder.apply(event)
    await assert_succeeded_once(parts, jid)


async def test_an_older_attempt_never_wins(parts: Parts) -> None:
    jid = await queued_job(parts.store)
    first, second = reports(jid, attempt=1, accuracy=0.5), reports(jid, attempt=2)
    await parts.recorder.apply(first[0])
    await parts.recorder.apply(first[1])
    await parts.recorder.apply(second[0])  # redelivered to another trainer
    for event in first[2:]:
        await parts.recorder.apply(event)
    doc = await parts.store.get(jid)
    assert doc is not None and states.of(doc) == states.RUNNING
    assert doc["attempts"] == 2 and doc["history"] == [], "attempt 1's epochs are not kept"
    for event in second[1:]:
        await parts.recorder.apply(event)
    await assert_succeeded_once(parts, jid, attempts=2)
    doc = await parts.store.get(jid)
    assert doc is not None and doc["result"]["test_accuracy"] == pytest.approx(0.97)


async def test_epochs_after_a_cancel_change_nothing(parts: Parts) -> None:
    jid = await queued_job(parts.store)
    events = reports(jid)
    await parts.recorder.apply(events[0])
    assert await parts.store.transition(jid, 1, states.CANCELLED, {"error": "by ann"})
    for event in events[1:]:
        await parts.recorder.apply(event)
    doc = await parts.store.get(jid)
    assert doc is not None and states.of(doc) == states.CANCELLED
    assert doc["result"] is None and doc["history"] == []


async def test_a_failure_ends_the_job_once(parts: Parts) -> None:
    jid = await queued_job(parts.store)
    failure = event_pb2.JobEvent(
        job_id=jid, run=1, attempt=1, failed=event_pb2.JobFailure(reason="loss became nan")
    )
    for event in [failure, reports(jid)[0], failure]:
        await parts.recorder.apply(event)
    doc = await parts.store.get(jid)
    assert doc is not None and states.of(doc) == states.FAILED
    assert doc["error"] == "loss became nan"
    assert (await announced(parts, jid)).count(states.FAILED) == 1


async def test_reused_epochs_keep_their_attempt_and_mark_both_ways(parts: Parts) -> None:
    """Epoch 1 taken from a shorter job's checkpoint (attempt 0, reused), epoch 2 trained by
    attempt 1: the record keeps both marks, read back and after the success, and the job's
    reused_epochs becomes what the trainer did reuse."""
    jid = await queued_job(parts.store)
    reused = job_pb2.EpochMetrics(epoch=1, train_loss=1.0, attempt=0, reused=True)
    trained = job_pb2.EpochMetrics(epoch=2, train_loss=0.5, attempt=1)
    started, *_ = reports(jid)
    await parts.recorder.apply(started)
    for m in (reused, trained):
        await parts.recorder.apply(
            event_pb2.JobEvent(job_id=jid, run=1, attempt=1, epoch_completed=m)
        )
    doc = await parts.store.get(jid)
    assert doc is not None
    history = [(m.epoch, m.attempt, m.reused) for m in job_from(doc).history]
    assert history == [(1, 0, True), (2, 1, False)]
    assert doc["reused_epochs"] == 0, "no prediction was made for this job"

    await parts.recorder.apply(
        event_pb2.JobEvent(
            job_id=jid,
            run=1,
            attempt=1,
            epochs=[reused, trained],
            succeeded=job_pb2.Result(test_accuracy=0.9, device="cpu"),
        )
    )
    doc = await parts.store.get(jid)
    assert doc is not None
    job = job_from(doc)
    assert [(m.epoch, m.attempt, m.reused) for m in job.history] == history
    assert job.reused_epochs == 1
