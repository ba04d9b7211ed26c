"""The one consume loop, against a real nats-server: acks, redeliveries in order, settling."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from tests.support.servers import Nats
from tuner.core.consume import consume

DURABLE = "test"


@dataclass
class Queue:
    """A stream of its own with one durable pull consumer."""

    nats: Nats
    stream: str
    subject: str

    async def publish(self, *payloads: str) -> None:
        for payload in payloads:
            await self.nats.js.publish(self.subject, payload.encode(), stream=self.stream)

    async def settled(self) -> bool:
        """Nothing left to deliver and nothing delivered but unacknowledged."""
        info = await self.nats.js.consumer_info(self.stream, DURABLE)
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)


@pytest.fixture
async def queue(nats: Nats) -> AsyncIterator[Queue]:
    name = f"TEST_CONSUME_{uuid.uuid4().hex[:8].upper()}"
    subject = f"test.consume.{name.lower()}"
    await nats.js.add_stream(StreamConfig(name=name, subjects=[subject]))
    await nats.js.add_consumer(
        name, ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, ack_wait=1.0)
    )
    try:
        yield Queue(nats, name, subject)
    finally:
        await nats.js.delete_stream(name)


@dataclass
class Handled:
    """What the handler saw: each message's payload and delivery count, in order."""

    seen: list[tuple[str, int]] = field(default_factory=list)

    def payloads(self) -> list[str]:
        return [payload for payload, _ in self.seen]


async def until(condition: Callable[[], Awaitable[bool] | bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        outcome = condition()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        assert time.monotonic() < deadline, "not true in time"
        await asyncio.sleep(0.05)


async def running(
    queue: Queue, handle: Callable[[Msg], Awaitable[None]], **options: Any
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stopping = asyncio.Event()
    task = asyncio.create_task(
        consume(queue.nats.js, queue.stream, DURABLE, handle, stopping, **options)
    )
    return stopping, task


async def stop(stopping: asyncio.Event, task: asyncio.Task[None]) -> None:
    stopping.set()
    await asyncio.wait_for(task, timeout=10)


async def test_each_message_is_acked_once_handled(queue: Queue) -> None:
    handled = Handled()

    async def handle(msg: Msg) -> None:
        handled.seen.append((msg.data.decode(), msg.metadata.num_delivered))

    await queue.publish("1", "2", "3")
    stopping, task = await running(queue, handle)
    try:
        await until(lambda: len(handled.seen) == 3)
        await until(queue.settled)
        await queue.publish("4")
        await until(lambda: len(handled.seen) == 4)
        await until(queue.settled)
        await asyncio.sleep(1.5)  # past the ack wait: nothing comes again
    finally:
        await stop(stopping, task)
    assert handled.seen == [("1", 1), ("2", 1), ("3", 1), ("4", 1)]


async def test_a_failure_redelivers_the_rest_of_the_batch_in_order_and_goes_on(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    handled = Handled()

    async def handle(msg: Msg) -> None:
        payload = msg.data.decode()
        handled.seen.append((payload, msg.metadata.num_delivered))
        if payload == "3" and msg.metadata.num_delivered == 1:
            raise RuntimeError("the database is away")

    await queue.publish("1", "2", "3", "4", "5")  # one batch
    stopping, task = await running(queue, handle)
    try:
        await until(lambda: len(handled.seen) == 6)
        await queue.publish("6")
        await until(lambda: len(handled.seen) == 7)
        await until(queue.settled)
    finally:
        await stop(stopping, task)

    assert handled.seen == [
        ("1", 1),
        ("2", 1),
        ("3", 1),  # raised: 3, 4 and 5 go back, 4 and 5 unhandled
        ("3", 2),
        ("4", 2),
        ("5", 2),
        ("6", 1),
    ]
    assert task.done() and task.exception() is None
    failures = [r for r in caplog.records if "handling a message failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None, "logged with its traceback"


async def test_a_transient_failure_is_logged_in_a_line(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    handled = Handled()

    async def handle(msg: Msg) -> None:
        handled.seen.append((msg.data.decode(), msg.metadata.num_delivered))
        if msg.metadata.num_delivered == 1:
            raise ConnectionError("outage")

    await queue.publish("1")
    stopping, task = await running(queue, handle, transient=(ConnectionError,))
    try:
        await until(lambda: len(handled.seen) == 2)
        await until(queue.settled)
    finally:
        await stop(stopping, task)

    assert handled.seen == [("1", 1), ("1", 2)]
    [line] = [r for r in caplog.records if "will redeliver" in r.getMessage()]
    assert line.exc_info is None
    assert "ConnectionError('outage')" in line.getMessage()


async def test_without_acks_the_handler_settles(queue: Queue) -> None:
    handled = Handled()

    async def handle(msg: Msg) -> None:
        payload, delivered = msg.data.decode(), msg.metadata.num_delivered
        handled.seen.append((payload, delivered))
        if payload == "even" or delivered > 1:
            await msg.ack()
        # an odd one is left unsettled the first time: the ack wait brings it back

    await queue.publish("even", "odd")
    stopping, task = await running(queue, handle, acks=False)
    try:
        await until(lambda: len(handled.seen) == 3)
        await until(queue.settled)
    finally:
        await stop(stopping, task)

    assert handled.seen == [("even", 1), ("odd", 1), ("odd", 2)]


async def test_stopping_ends_the_loop_while_it_idles(queue: Queue) -> None:
    async def handle(msg: Msg) -> None:
        raise AssertionError("nothing was published")

    stopping, task = await running(queue, handle)
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await stop(stopping, task)
    assert time.monotonic() - started < 3
