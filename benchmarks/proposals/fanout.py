"""One JetStream consumer per job run, shared by every WatchJob stream of that run.

Proposed for scheduler/ (e.g. scheduler/fanout.py). Today each WatchJob call creates its own
ordered consumer on TUNER_EVENTS: nats-server 2.15 caps a stream at 1000 consumers (even
with max_consumers=-1), so the 1000th concurrent watcher fails with UNKNOWN "maximum
consumers limit reached", and every event is pushed, decoded and re-stamped once per watcher.
With the hub, NATS delivers each event to the scheduler once, whatever the number of watchers.

Wiring, in TunerService: `self._hub = EventHub(js)` in __init__, and in WatchJob, for a job
that has not ended, iterate `self._hub.events(subject, request.after_sequence)` instead of
`self._events(subject, request.after_sequence)` (an ended job keeps the short replay with
idle=1.0). Resuming stays exact: a watcher gets the buffered events after its sequence, then
the live ones, with no await between the two, so nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from tuner import streams
from tuner.v1 import event_pb2

log = logging.getLogger(__name__)


@dataclass
class _Topic:
    """One job run's subject: its events so far and the queues of its watchers."""

    events: list[event_pb2.JobEvent] = field(default_factory=list)
    watchers: set[asyncio.Queue[event_pb2.JobEvent | None]] = field(default_factory=set)
    error: BaseException | None = None
    pump: asyncio.Task[None] | None = None


class EventHub:
    """Reads each watched job run's events once and hands them to all of its watchers.

    A run's events stay in memory while it has a watcher (progress is throttled: ~5 events
    a second of training, ~60 bytes each); the consumer and the buffer go with the last one.
    """

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._topics: dict[str, _Topic] = {}

    async def events(self, subject: str, after_sequence: int) -> AsyncIterator[event_pb2.JobEvent]:
        """The run's events after `after_sequence`, then live ones, until the caller stops."""
        topic = self._topics.get(subject)
        if topic is None:
            topic = self._topics[subject] = _Topic()
            topic.pump = asyncio.create_task(self._pump(subject, topic))
        queue: asyncio.Queue[event_pb2.JobEvent | None] = asyncio.Queue()
        # No await between the copy and the registration: every event lands in one of them.
        backlog = [e for e in topic.events if e.sequence > after_sequence]
        topic.watchers.add(queue)
        try:
            for event in backlog:
                yield event
            while True:
                item = await queue.get()
                if item is None:
                    raise RuntimeError(f"reading {subject} failed: {topic.error}")
                if item.sequence > after_sequence:
                    yield item
        finally:
            topic.watchers.discard(queue)
            if not topic.watchers and self._topics.get(subject) is topic:
                del self._topics[subject]
                if topic.pump is not None:
                    topic.pump.cancel()

    async def _pump(self, subject: str, topic: _Topic) -> None:
        try:
            sub = await self._js.subscribe(
                subject,
                stream=streams.EVENTS_STREAM,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
        except Exception as error:
            self._fail(subject, topic, error)
            return
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=30)
                except NatsTimeout:
                    continue
                try:
                    event = event_pb2.JobEvent.FromString(msg.data)
                except Exception:
                    log.warning("skipped a malformed event on %s", msg.subject)
                    continue
                event.sequence = msg.metadata.sequence.stream
                topic.events.append(event)
                for queue in topic.watchers:
                    queue.put_nowait(event)
        except Exception as error:
            self._fail(subject, topic, error)
        finally:
            await asyncio.shield(sub.unsubscribe())

    def _fail(self, subject: str, topic: _Topic, error: BaseException) -> None:
        log.warning("watching %s failed: %s", subject, error)
        topic.error = error
        if self._topics.get(subject) is topic:
            del self._topics[subject]
        for queue in topic.watchers:
            queue.put_nowait(None)
