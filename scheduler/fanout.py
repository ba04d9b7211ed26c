"""Job events (and sweep changes) for watchers: one JetStream consumer per watched subject.

A consumer per watcher made NATS push, and the scheduler decode, every event once per watcher,
and nats-server caps a stream at 1000 consumers. The hub reads a subject once and hands each
event to all of its watchers. A watcher that falls behind, or whose shared consumer fails,
goes on alone from its last sequence, so it still gets every event once and in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextvars import Context
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from tuner.core import streams
from tuner.v1 import event_pb2

log = logging.getLogger(__name__)


class Sequenced(Protocol):
    """A message of the events stream that carries its stream sequence once read back."""

    sequence: int


M = TypeVar("M", bound=Sequenced)
Decode = Callable[[bytes], M]


def replay(
    js: JetStreamContext, subject: str, after_sequence: int, idle: float | None = None
) -> AsyncIterator[event_pb2.JobEvent]:
    """Events on `subject` after a stream sequence, through a consumer of the caller's own.

    Stops after `idle` quiet seconds if set, else goes on with live events.
    """
    return read_alone(js, subject, after_sequence, event_pb2.JobEvent.FromString, idle)


async def read_alone(
    js: JetStreamContext,
    subject: str,
    after_sequence: int,
    decode: Decode[M],
    idle: float | None = None,
) -> AsyncIterator[M]:
    """As `replay`, for any message `decode` reads."""
    sub = await _subscribe(js, subject, after_sequence)
    try:
        async for event in _read(sub, decode, idle):
            yield event
    finally:
        await asyncio.shield(sub.unsubscribe())


async def _subscribe(
    js: JetStreamContext, subject: str, after_sequence: int
) -> JetStreamContext.PushSubscription:
    """An ordered consumer of `subject` from the event after `after_sequence` (0: the first)."""
    if after_sequence:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_sequence + 1
        )
    else:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    return await js.subscribe(
        subject, stream=streams.EVENTS_STREAM, ordered_consumer=True, config=config
    )


async def _read(
    sub: JetStreamContext.PushSubscription, decode: Decode[M], idle: float | None
) -> AsyncIterator[M]:
    """Decoded events, their sequences set; ends after `idle` quiet seconds if set."""
    while True:
        try:
            msg = await sub.next_msg(timeout=idle or 30)
        except TimeoutError:  # nats-py raises its own or asyncio's
            if idle is not None:
                return
            continue
        try:
            event = decode(msg.data)
        except Exception:
            log.warning("skipped a malformed event on %s", msg.subject)
            continue
        event.sequence = msg.metadata.sequence.stream
        yield event


class Encoded(Generic[M]):
    """Each event's response bytes, made once for all of its watchers. Cached by stream
    sequence, which names one message of the stream for good; the newest `size` are kept."""

    def __init__(self, encode: Callable[[M], bytes], size: int = 4096) -> None:
        self._encode = encode
        self._size = size
        self._made: dict[int, bytes] = {}

    def __call__(self, event: M) -> bytes:
        data = self._made.get(event.sequence)
        if data is None:
            data = self._made[event.sequence] = self._encode(event)
            if len(self._made) > self._size:
                del self._made[next(iter(self._made))]  # the oldest made
        return data


@dataclass(eq=False)
class _Topic(Generic[M]):
    """One subject's shared consumer: its newest events and the queues of its watchers."""

    events: deque[M]
    # Every event after this sequence is in `events` or yet to be read.
    covered_after: int = 0
    members: int = 0
    # None tells a watcher to leave the hub and read on by itself.
    watchers: set[asyncio.Queue[M | None]] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: bool = False
    pump: asyncio.Task[None] | None = None


class Hub(Generic[M]):
    """Shares one consumer among the watchers of each subject.

    A job run's subject is read from its first event; a wildcard (all jobs), or any subject
    when `newest_only`, from the stream's newest `backlog` messages, so that a client
    reconnecting soon after resumes in the hub. A subject keeps its newest `backlog` events
    while it has watchers; a watcher more than `max_lag` events behind leaves the hub.
    """

    def __init__(
        self,
        js: JetStreamContext,
        decode: Decode[M],
        backlog: int = 4096,
        max_lag: int = 4096,
        newest_only: bool = False,
    ) -> None:
        self._js = js
        self._decode = decode
        self._backlog = backlog
        self._max_lag = max_lag
        self._newest_only = newest_only
        self._topics: dict[str, _Topic[M]] = {}
        self.watching = 0  # calls in events() now, shared or alone

    async def last_sequence(self) -> int:
        """The events stream's newest sequence: after it, only new events."""
        info = await self._js.stream_info(streams.EVENTS_STREAM)
        return info.state.last_seq

    def watched(self) -> int:
        """Subjects read for watchers now, one consumer each."""
        return len(self._topics)

    async def events(self, subject: str, after_sequence: int) -> AsyncIterator[M]:
        """Events on `subject` after `after_sequence`, then live ones, until the caller stops."""
        last = after_sequence
        self.watching += 1
        try:
            topic = self._join(subject)
            try:
                await topic.ready.wait()
                if not topic.failed and last >= topic.covered_after:
                    async for event in self._follow(topic, last):
                        last = event.sequence
                        yield event
            finally:
                self._leave(subject, topic)
            async for event in read_alone(self._js, subject, last, self._decode):
                yield event
        finally:
            self.watching -= 1

    def _join(self, subject: str) -> _Topic[M]:
        topic = self._topics.get(subject)
        if topic is None:
            topic = self._topics[subject] = _Topic(deque(maxlen=self._backlog))
            # A context of its own: it outlives the call that starts it, and that call's request id.
            topic.pump = asyncio.create_task(self._pump(subject, topic), context=Context())
        topic.members += 1
        return topic

    def _leave(self, subject: str, topic: _Topic[M]) -> None:
        topic.members -= 1
        if topic.members == 0:
            if self._topics.get(subject) is topic:
                del self._topics[subject]
            if topic.pump is not None:
                topic.pump.cancel()

    async def _follow(self, topic: _Topic[M], after: int) -> AsyncIterator[M]:
        queue: asyncio.Queue[M | None] = asyncio.Queue()
        # No await between the copy and the registration: every event lands in one of them.
        backlog = [event for event in topic.events if event.sequence > after]
        topic.watchers.add(queue)
        try:
            for event in backlog:
                yield event
            while (live := await queue.get()) is not None:
                if live.sequence > after:
                    yield live
        finally:
            topic.watchers.discard(queue)

    async def _pump(self, subject: str, topic: _Topic[M]) -> None:
        try:
            if self._newest_only or "*" in subject or ">" in subject:
                topic.covered_after = max(0, await self.last_sequence() - self._backlog)
            sub = await _subscribe(self._js, subject, topic.covered_after)
        except Exception as error:
            self._fail(subject, topic, error)
            return
        topic.ready.set()
        try:
            async for event in _read(sub, self._decode, None):
                self._publish(topic, event)
        except Exception as error:
            self._fail(subject, topic, error)
        finally:
            await asyncio.shield(sub.unsubscribe())

    def _publish(self, topic: _Topic[M], event: M) -> None:
        if len(topic.events) == topic.events.maxlen:
            topic.covered_after = topic.events[0].sequence
        topic.events.append(event)
        for queue in list(topic.watchers):
            if queue.qsize() >= self._max_lag:
                topic.watchers.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(event)

    def _fail(self, subject: str, topic: _Topic[M], error: BaseException) -> None:
        log.warning("reading %s for watchers failed, they go on alone: %s", subject, error)
        topic.failed = True
        topic.ready.set()
        if self._topics.get(subject) is topic:
            del self._topics[subject]
        for queue in topic.watchers:
            queue.put_nowait(None)
        topic.watchers.clear()


class EventHub(Hub[event_pb2.JobEvent]):
    """The hub of job events."""

    def __init__(self, js: JetStreamContext, backlog: int = 4096, max_lag: int = 4096) -> None:
        super().__init__(js, event_pb2.JobEvent.FromString, backlog, max_lag)
