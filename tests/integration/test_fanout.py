"""The scheduler's EventHub against a real nats-server: shared consumers, exact resumes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from scheduler.fanout import Encoded, EventHub
from tuner.core import streams
from tuner.stack import Stack
from tuner.v1 import event_pb2, job_pb2

job_ids = (f"{n:032x}" for n in itertools.count(1))


@pytest.fixture(scope="module")
async def nats(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[JetStreamContext]:
    stack = Stack(tmp_path_factory.mktemp("nats"))
    client: Client | None = None
    try:
        client = await streams.connect(stack.start_nats(), "fanout-test")
        js = client.jetstream()
        await streams.ensure_streams(js, streams.QueuePolicy())
        yield js
    finally:
        if client is not None:
            await client.close()
        stack.stop()


async def publish(js: JetStreamContext, subject: str, job_id: str, count: int) -> list[int]:
    """`count` progress events for the job; their stream sequences."""
    sequences = []
    for step in range(count):
        event = event_pb2.JobEvent(job_id=job_id, run=1, progress=job_pb2.Progress(step=step))
        ack = await js.publish(subject, event.SerializeToString())
        sequences.append(ack.seq)
    return sequences


def collect(events: AsyncIterator[event_pb2.JobEvent], count: int) -> asyncio.Task[list[int]]:
    """A task reading `count` events' sequences, then leaving."""

    async def read() -> list[int]:
        got: list[int] = []
        async for event in events:
            got.append(event.sequence)
            if len(got) == count:
                break
        await events.aclose()  # type: ignore[attr-defined]
        return got

    return asyncio.create_task(read())


async def consumers(js: JetStreamContext, subject: str) -> int:
    """Consumers reading `subject` for watchers."""
    infos = await js.consumers_info(streams.EVENTS_STREAM)
    return sum(1 for info in infos if info.config.filter_subject == subject)


async def eventually(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_the_watchers_of_a_job_share_one_consumer(nats: JetStreamContext) -> None:
    hub = EventHub(nats)
    job_id = next(job_ids)
    subject = streams.events_subject(job_id, 1)
    before = await publish(nats, subject, job_id, 3)
    watchers = [collect(hub.events(subject, 0), 8) for _ in range(20)]
    await eventually(lambda: hub.watched() == 1, "the watchers to join")
    after = await publish(nats, subject, job_id, 5)
    assert await consumers(nats, subject) == 1

    got = await asyncio.wait_for(asyncio.gather(*watchers), 10)

    assert got == [before + after] * 20
    assert hub.watched() == 0


async def test_a_watcher_resumes_after_its_sequence(nats: JetStreamContext) -> None:
    hub = EventHub(nats)
    job_id = next(job_ids)
    subject = streams.events_subject(job_id, 1)
    sequences = await publish(nats, subject, job_id, 6)
    from_start = collect(hub.events(subject, 0), 6)
    resumed = collect(hub.events(subject, sequences[2]), 3)

    assert await asyncio.wait_for(from_start, 10) == sequences
    assert await asyncio.wait_for(resumed, 10) == sequences[3:]


async def test_a_watcher_that_falls_behind_goes_on_alone(nats: JetStreamContext) -> None:
    hub = EventHub(nats, max_lag=2)
    job_id = next(job_ids)
    subject = streams.events_subject(job_id, 1)
    first = await publish(nats, subject, job_id, 1)
    slow = hub.events(subject, 0)
    assert (await asyncio.wait_for(anext(slow), 10)).sequence == first[0]
    fast = collect(hub.events(subject, 0), 11)

    rest = await publish(nats, subject, job_id, 10)
    assert await asyncio.wait_for(fast, 10) == first + rest
    got = [(await asyncio.wait_for(anext(slow), 10)).sequence for _ in rest]

    assert got == rest
    assert hub.watched() == 0  # the hub let go of the subject: `slow` reads by itself
    more = await publish(nats, subject, job_id, 2)
    assert [(await asyncio.wait_for(anext(slow), 10)).sequence for _ in more] == more
    await slow.aclose()  # type: ignore[attr-defined]


async def test_all_events_from_before_the_backlog_and_from_within_it(
    nats: JetStreamContext,
) -> None:
    hub = EventHub(nats, backlog=4)
    sequences: list[int] = []
    for _ in range(5):
        job_id = next(job_ids)
        sequences += await publish(nats, streams.events_subject(job_id, 1), job_id, 2)
    start = sequences[0] - 1
    everything = collect(hub.events(streams.EVENTS_SUBJECTS, start), len(sequences))
    recent = collect(hub.events(streams.EVENTS_SUBJECTS, sequences[-3]), 2)

    assert await asyncio.wait_for(everything, 10) == sequences
    assert await asyncio.wait_for(recent, 10) == sequences[-2:]


async def test_from_the_last_sequence_only_new_events_arrive(nats: JetStreamContext) -> None:
    hub = EventHub(nats)
    job_id = next(job_ids)
    subject = streams.events_subject(job_id, 1)
    await publish(nats, subject, job_id, 3)
    new = collect(hub.events(streams.EVENTS_SUBJECTS, await hub.last_sequence()), 2)
    await eventually(lambda: hub.watched() == 1, "the watcher to join")

    sequences = await publish(nats, subject, job_id, 2)

    assert await asyncio.wait_for(new, 10) == sequences


async def test_a_missing_stream_fails_the_watch_without_hanging(nats: JetStreamContext) -> None:
    hub = EventHub(nats)
    await nats.delete_stream(streams.EVENTS_STREAM)
    try:
        with pytest.raises(Exception, match="stream not found"):
            await asyncio.wait_for(anext(hub.events("tuner.events.x.1", 0)), 10)
        assert hub.watched() == 0
    finally:
        await streams.ensure_streams(nats, streams.QueuePolicy())


async def test_each_events_response_is_made_once_for_all_of_its_watchers(
    nats: JetStreamContext,
) -> None:
    hub = EventHub(nats)
    made: list[int] = []

    def encode(event: event_pb2.JobEvent) -> bytes:
        made.append(event.sequence)
        return event.SerializeToString()

    frames = Encoded(encode)
    job_id = next(job_ids)
    subject = streams.events_subject(job_id, 1)

    async def read() -> list[bytes]:
        got: list[bytes] = []
        events = hub.events(subject, 0)
        async for event in events:
            got.append(frames(event))
            if len(got) == 4:
                break
        await events.aclose()  # type: ignore[attr-defined]
        return got

    watchers = [asyncio.create_task(read()) for _ in range(20)]
    await eventually(lambda: hub.watched() == 1, "the watchers to join")
    sequences = await publish(nats, subject, job_id, 4)
    got = await asyncio.wait_for(asyncio.gather(*watchers), 10)

    assert made == sequences, "made more than once"
    assert all(g == got[0] for g in got)
    assert [event_pb2.JobEvent.FromString(data).sequence for data in got[0]] == sequences


def test_the_oldest_made_responses_go_first() -> None:
    made: list[int] = []

    def encode(event: event_pb2.JobEvent) -> bytes:
        made.append(event.sequence)
        return event.SerializeToString()

    frames = Encoded(encode, size=2)
    for sequence in (1, 2, 3, 2, 1):
        frames(event_pb2.JobEvent(sequence=sequence))
    assert made == [1, 2, 3, 1]
