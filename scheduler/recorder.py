"""Records trainer reports from the event stream as job state, whatever order they arrive in.

Several scheduler replicas share the durable consumer, so one job's events may be handled
by different replicas at once and out of order. Recording therefore does not depend on
order; the attempt number is the fence:
- Every report of attempt A first makes sure attempt A is the one running ("begin"): one
  conditional write moves the job to RUNNING with attempts=A if it was queued or ran an
  older attempt. Whichever of A's reports is handled first does it; the others find it done.
  A replica that has read attempt A (or a later one) recorded for the run skips that write
  for A's later reports: attempts only grow within a run, so it could never match again.
  Should the job read otherwise (deleted by the retention and submitted anew), the replica
  forgets what it read and begins the attempt after all.
- An epoch is appended only to attempt A's running record, once (filtered on its number),
  kept sorted by epoch.
- A success carries all of its attempt's epochs and writes them with the result, so a
  success recorded before some epoch reports still leaves the whole history; epochs
  arriving later find the job no longer running and change nothing.
- A report of an attempt older than the recorded one changes nothing.
Each write is a conditional update, so a redelivered report is harmless; the state it
leads to is announced again (the announcement's message id drops the repeat).
"""

from __future__ import annotations

import asyncio
import logging
import time

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from scheduler.dispatch import Dispatcher
from scheduler.metrics import Metrics
from scheduler.outages import OUTAGES
from store import points
from store.documents import Document, epoch_doc, now, result_doc
from store.jobs import JobStore
from tuner.core import streams
from tuner.core.consume import consume
from tuner.core.states import CANCELLED, FAILED, RUNNING, SUCCEEDED, of
from tuner.v1 import event_pb2

log = logging.getLogger(__name__)

REPORTS = ("started", "epoch_completed", "succeeded", "failed")
BEGUN_KEPT = 10_000  # runs whose begun attempt a recorder remembers


class Recorder:
    """The durable consumer of the event stream; acks an event only once it is recorded."""

    def __init__(
        self,
        js: JetStreamContext,
        store: JobStore,
        dispatcher: Dispatcher,
        metrics: Metrics | None = None,
    ) -> None:
        self._js = js
        self._store = store
        self._dispatcher = dispatcher
        self._metrics = metrics or Metrics()
        # (job id, run) -> the highest attempt read as begun, oldest first; see the docstring.
        self._begun: dict[tuple[str, int], int] = {}

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
        await self.apply(event)
        kind = event.WhichOneof("kind")
        if kind in REPORTS:
            self._metrics.events_recorded.labels(kind).inc()
            if event.HasField("time"):
                lag = time.time() - event.time.ToNanoseconds() / 1e9
                self._metrics.recording_lag.observe(max(0.0, lag))

    async def apply(self, event: event_pb2.JobEvent) -> None:
        """Record one trainer report (progress is for watchers only; state_changed is ours)."""
        kind = event.WhichOneof("kind")
        if kind == "failed":
            await self._failed(event)
            return
        if kind not in REPORTS:
            return
        if kind == "succeeded" and self._has_begun(event) and await self._succeeded(event):
            return  # no need to begin it: it was read as running
        doc = await self._begin(event)
        if doc is None:
            return
        if kind == "epoch_completed":
            await self._epoch(event, doc)
        elif kind == "succeeded":
            await self._succeeded(event)

    async def _begin(self, event: event_pb2.JobEvent) -> Document | None:
        """Make the event's attempt the running one, if no newer one or an ending came first."""
        changes = {
            "attempts": event.attempt,
            "start_time": now(),
            "history": [],
            "progress": None,
            "trainer": event.started.trainer if event.HasField("started") else "",
        }
        skipped = self._has_begun(event)
        moved = not skipped and await self._store.transition(
            event.job_id, event.run, RUNNING, changes, attempt=event.attempt - 1
        )
        if not moved and event.HasField("started"):
            # Another report of this attempt began it: only the trainer's name is missing.
            await self._store.set_trainer(
                event.job_id, event.run, event.attempt, event.started.trainer
            )
        doc = await self._store.get(event.job_id)
        if doc is None or doc["run"] != event.run:
            return None
        if doc["attempts"] < event.attempt and skipped:  # deleted and submitted anew since
            self._begun.pop((event.job_id, event.run), None)
            return await self._begin(event)
        if doc["attempts"] >= event.attempt:
            self._remember_begun(event.job_id, event.run, event.attempt)
        if moved:
            log.info(
                "job %s run %d attempt %d started on %s",
                event.job_id, event.run, event.attempt, doc["trainer"] or "a trainer",
            )  # fmt: skip
        if of(doc) == RUNNING and doc["attempts"] == event.attempt:
            if moved or event.HasField("started"):
                await self._dispatcher.announce(doc)
        elif of(doc) == CANCELLED and event.WhichOneof("kind") != "succeeded":
            log.info("job %s reported after its cancel: telling its trainer again", doc["_id"])
            await self._dispatcher.withdraw(doc)
        return doc

    def _has_begun(self, event: event_pb2.JobEvent) -> bool:
        """Read before as running this attempt or a later one."""
        return self._begun.get((event.job_id, event.run), 0) >= event.attempt

    def _remember_begun(self, job_id: str, run: int, attempt: int) -> None:
        key = (job_id, run)
        self._begun[key] = max(attempt, self._begun.pop(key, 0))
        if len(self._begun) > BEGUN_KEPT:
            del self._begun[next(iter(self._begun))]

    async def _epoch(self, event: event_pb2.JobEvent, doc: Document) -> None:
        m = event.epoch_completed
        epochs = doc["hyperparameters"]["epochs"]
        progress = {"epoch": m.epoch, "total_epochs": epochs, "loss": m.train_loss}
        if await self._store.add_epoch(
            event.job_id, event.run, event.attempt, epoch_doc(m), progress
        ):
            await self._dispatcher.recorded(event.job_id)

    async def _succeeded(self, event: event_pb2.JobEvent) -> bool:
        """Record the success; whether the run is now SUCCEEDED."""
        changes: Document = {"result": result_doc(event.succeeded), "end_time": now()}
        if event.epochs:
            changes["history"] = sorted((epoch_doc(m) for m in event.epochs), key=_epoch_number)
            # What the trainer did reuse, where the submission only predicted it.
            changes["reused_epochs"] = sum(m.reused for m in event.epochs)
        moved = await self._store.transition(
            event.job_id, event.run, SUCCEEDED, changes, attempt=event.attempt
        )
        doc = await self._store.get(event.job_id)
        if doc is None or doc["run"] != event.run or of(doc) != SUCCEEDED:
            return False
        # Also when not moved: a redelivered event after a crash or an outage between writes.
        await self._store.rank(doc)
        await points.file_point(self._store, doc)
        if moved:
            accuracy = event.succeeded.test_accuracy
            log.info("job %s run %d succeeded: accuracy %.4f", event.job_id, event.run, accuracy)
        await self._dispatcher.announce(doc)
        return True

    async def _failed(self, event: event_pb2.JobEvent) -> None:
        reason = event.failed.reason or "the trainer gave no reason"
        changes = {"error": reason, "end_time": now()}
        moved = await self._store.transition(
            event.job_id, event.run, FAILED, changes, attempt=event.attempt
        )
        doc = await self._store.get(event.job_id)
        if doc is None or doc["run"] != event.run or of(doc) != FAILED:
            return
        if moved:
            log.info("job %s run %d failed: %s", event.job_id, event.run, reason)
        await self._dispatcher.announce(doc)


def _epoch_number(metrics: Document) -> int:
    return int(metrics["epoch"])
