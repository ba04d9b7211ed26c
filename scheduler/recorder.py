"""Records trainer reports from the event stream as job state, in stream order."""

from __future__ import annotations

import asyncio
import logging

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from scheduler.dispatch import Dispatcher
from scheduler.outages import OUTAGES
from store.documents import epoch_doc, now, result_doc
from store.jobs import JobStore
from tuner.core import streams
from tuner.core.consume import consume
from tuner.core.states import CANCELLED, FAILED, RUNNING, SUCCEEDED, of
from tuner.v1 import event_pb2

log = logging.getLogger(__name__)


class Recorder:
    """The durable consumer of the event stream; acks an event only once it is recorded."""

    def __init__(self, js: JetStreamContext, store: JobStore, dispatcher: Dispatcher) -> None:
        self._js = js
        self._store = store
        self._dispatcher = dispatcher

    async def run(self, stopping: asyncio.Event) -> None:
        await consume(
            self._js,
            streams.EVENTS_STREAM,
            streams.SCHEDULER_CONSUMER,
            self.record,
            stopping,
            transient=OUTAGES,
        )

    async def record(self, msg: Msg) -> None:
        try:
            event = event_pb2.JobEvent.FromString(msg.data)
        except DecodeError:
            log.warning("dropped a malformed event on %s", msg.subject)
            return
        if msg.subject != streams.events_subject(event.job_id, event.run):
            log.warning(
                "dropped an event for job %r on foreign subject %s", event.job_id, msg.subject
            )
            return
        kind = event.WhichOneof("kind")
        if kind == "started":
            await self._started(event)
        elif kind == "epoch_completed":
            await self._epoch(event)
        elif kind == "succeeded":
            await self._succeeded(event)
        elif kind == "failed":
            await self._failed(event)
        # progress is for watchers only; state_changed is this service's own record

    async def _started(self, event: event_pb2.JobEvent) -> None:
        changes = {
            "attempts": event.attempt,
            "trainer": event.started.trainer,
            "start_time": now(),
            "history": [],
            "progress": None,
        }
        moved = await self._store.transition(
            event.job_id, event.run, RUNNING, changes, attempt=event.attempt - 1
        )
        doc = await self._store.get(event.job_id)
        if doc is None:
            return
        if moved:
            log.info(
                "job %s run %d attempt %d started on %s",
                event.job_id,
                event.run,
                event.attempt,
                event.started.trainer,
            )
            await self._dispatcher.announce(doc)
        elif of(doc) == CANCELLED and doc["run"] == event.run:
            log.info(
                "job %s started after it was cancelled: telling its trainer again", event.job_id
            )
            await self._dispatcher.withdraw(doc)

    async def _epoch(self, event: event_pb2.JobEvent) -> None:
        m = event.epoch_completed
        doc = await self._store.get(event.job_id)
        if doc is None:
            return
        epochs = doc["hyperparameters"]["epochs"]
        progress = {"epoch": m.epoch, "total_epochs": epochs, "loss": m.train_loss}
        await self._store.add_epoch(event.job_id, event.run, event.attempt, epoch_doc(m), progress)

    async def _succeeded(self, event: event_pb2.JobEvent) -> None:
        changes = {"result": result_doc(event.succeeded), "end_time": now()}
        moved = await self._store.transition(
            event.job_id, event.run, SUCCEEDED, changes, attempt=event.attempt
        )
        doc = await self._store.get(event.job_id)
        if doc is None or doc["run"] != event.run or of(doc) != SUCCEEDED:
            return
        # Also when not moved: a redelivered event after a crash between these two writes.
        await self._store.rank(doc)
        if moved:
            accuracy = event.succeeded.test_accuracy
            log.info("job %s run %d succeeded: accuracy %.4f", event.job_id, event.run, accuracy)
            await self._dispatcher.announce(doc)

    async def _failed(self, event: event_pb2.JobEvent) -> None:
        reason = event.failed.reason or "the trainer gave no reason"
        changes = {"error": reason, "end_time": now()}
        moved = await self._store.transition(
            event.job_id, event.run, FAILED, changes, attempt=event.attempt
        )
        if moved and (doc := await self._store.get(event.job_id)) is not None:
            log.info("job %s run %d failed: %s", event.job_id, event.run, reason)
            await self._dispatcher.announce(doc)
