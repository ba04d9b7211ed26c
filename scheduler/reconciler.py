"""Finds jobs that nothing would move on by itself, and moves them.

- A state change NATS did not take (scheduler/dispatch.py remembers which) is announced.
- A QUEUED job whose publish to the queue was never confirmed (NATS down, scheduler killed)
  is queued now.
- A RUNNING job whose queue message is gone (its trainer acked or gave it up) but whose
  ending was never recorded is resolved from the event stream: a terminal report found
  there is recorded; with none, and the run silent for longer than the ack wait, it fails
  with a reason saying so. While the message is still in the queue, JetStream owns the job:
  it redelivers it after the ack wait, or gives up (scheduler/advisories.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    ) -> None:
        self._js = js
        self._store = store
        self._dispatcher = dispatcher
        self._recorder = recorder
        self._quiet = timedelta(seconds=ack_wait_seconds)
        self._every = every

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
            if event.WhichOneof("kind") == "state_changed":
                continue
            last_report = event.time.ToDatetime().replace(tzinfo=now().tzinfo)
            if event.WhichOneof("kind") in TERMINAL_REPORTS and event.attempt >= doc["attempts"]:
                ending = event
        if ending is not None:
            log.warning(
                "job %s run %d: recording its %s report, which was never recorded",
                doc["_id"], doc["run"], ending.WhichOneof("kind"),
            )  # fmt: skip
            await self._recorder.apply(ending)
            return
        if last_report is not None and now() - last_report < self._quiet:
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
