"""Finds jobs that nothing would move on by itself, and moves them.

- A state change NATS did not take (scheduler/dispatch.py remembers which) is announced.
- A QUEUED job whose publish to the queue was never confirmed (NATS down, scheduler killed)
  is queued now.
- A RUNNING job whose queue message is gone (its trainer acked or gave it up) but whose
  ending was never recorded is resolved from the event stream: a terminal report found
  there is recorded; with none, and the run silent for longer than the ack wait while no
  trainer says it is on it, it fails with a reason saying so. While the message is still
  in the queue, JetStream owns the job: it redelivers it after the ack wait, or gives up
  (scheduler/advisories.py).

A success of an older attempt counts once the message is gone. The recorder refuses it
while a newer attempt may still end the job; but the older attempt's trainer acked the
message when it had published that success (a stall had made JetStream redeliver it
meanwhile), so nothing redelivers the newer one if it never ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from scheduler.dispatch import Dispatcher
from scheduler.fanout import replay
from scheduler.outages import OUTAGES
from scheduler.recorder import Recorder
from store.documents import Document, now
from store.jobs import JobStore
from tuner.core import streams
from tuner.core.states import FAILED, RUNNING
from tuner.v1 import event_pb2

log = logging.getLogger(__name__)

TERMINAL_REPORTS = ("succeeded", "failed")


class Reconciler:
    def __init__(
        self,
        js: JetStreamContext,
        store: JobStore,
        dispatcher: Dispatcher,
        recorder: Recorder,
        ack_wait_seconds: float,
        every: float = 5.0,
        training: Callable[[str, int], bool] = lambda job_id, run: False,
    ) -> None:
        """`training(job_id, run)`: whether a live trainer says it is training that run."""
        self._js = js
        self._store = store
        self._dispatcher = dispatcher
        self._recorder = recorder
        self._quiet = timedelta(seconds=ack_wait_seconds)
        self._every = every
        self._training = training

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.round()
            except OUTAGES as error:
                log.warning("reconciling jobs: %r", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self._every)

    async def round(self) -> None:
        await self._dispatcher.announce_missed()
        for doc in await self._store.undispatched(now() - timedelta(seconds=self._every)):
            log.info("job %s run %d was never queued: queuing it now", doc["_id"], doc["run"])
            await self._dispatcher.dispatch(doc)
        for doc in await self._store.running_quiet(now() - self._quiet):
            if not await self._queued(doc):
                await self._resolve(doc)

    async def _queued(self, doc: Document) -> bool:
        """Whether the job's message is still in the queue (delivered or not)."""
        if not doc["dispatch_sequence"]:
            return True  # not known: leave it to JetStream and the give-ups
        try:
            await self._js.get_msg(streams.JOBS_STREAM, doc["dispatch_sequence"])
        except NotFoundError:
            return False
        return True

    async def _resolve(self, doc: Document) -> None:
        subject = streams.events_subject(doc["_id"], doc["run"])
        ending: event_pb2.JobEvent | None = None
        last_report = None
        async for event in replay(self._js, subject, 0, idle=0.5):
            kind = event.WhichOneof("kind")
            if kind == "state_changed":
                continue
            last_report = event.time.ToDatetime().replace(tzinfo=now().tzinfo)
            newer = kind in TERMINAL_REPORTS and event.attempt >= doc["attempts"]
            if newer or (kind == "succeeded" and ending is None):
                ending = event
        if ending is not None:
            kind, attempt = ending.WhichOneof("kind"), ending.attempt
            log.warning(
                "job %s run %d: recording attempt %d's %s report, which was never recorded",
                doc["_id"], doc["run"], attempt, kind,
            )  # fmt: skip
            if attempt < doc["attempts"]:  # recorded in the place of the newer attempt
                stand_in = event_pb2.JobEvent()
                stand_in.CopyFrom(ending)
                stand_in.attempt = doc["attempts"]
                ending = stand_in
            await self._recorder.apply(ending)
            return
        if last_report is not None and now() - last_report < self._quiet:
            return
        if self._training(doc["_id"], doc["run"]):
            return
        reason = (
            f"lost: attempt {doc['attempts']} left the queue without reporting a result "
            f"(its trainer stopped answering)"
        )
        changes = {"error": reason, "end_time": now()}
        moved = await self._store.transition(
            doc["_id"], doc["run"], FAILED, changes, source=RUNNING, attempt=doc["attempts"]
        )
        if moved:
            log.warning("job %s run %d failed: %s", doc["_id"], doc["run"], reason)
            if (failed := await self._store.get(doc["_id"])) is not None:
                await self._dispatcher.announce(failed)
