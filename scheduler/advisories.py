"""Fails the jobs JetStream gave up on: every trainer that took them went silent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from scheduler.dispatch import Dispatcher
from scheduler.outages import OUTAGES
from store.documents import now
from store.jobs import JobStore
from tuner.core import streams
from tuner.core.consume import consume
from tuner.core.states import FAILED
from tuner.v1 import event_pb2

log = logging.getLogger(__name__)


class GiveUps:
    """Consumes MAX_DELIVERIES advisories of the job queue."""

    def __init__(self, js: JetStreamContext, store: JobStore, dispatcher: Dispatcher) -> None:
        self._js = js
        self._store = store
        self._dispatcher = dispatcher

    async def run(self, stopping: asyncio.Event) -> None:
        await consume(
            self._js,
            streams.ADVISORIES_STREAM,
            streams.SCHEDULER_CONSUMER,
            self.handle,
            stopping,
            batch=10,
            transient=OUTAGES,
        )

    async def handle(self, msg: Msg) -> None:
        try:
            advisory = json.loads(msg.data)
            sequence = int(advisory["stream_seq"])
            deliveries = int(advisory.get("deliveries", 0))
        except (ValueError, KeyError, TypeError):
            log.warning("dropped a malformed advisory")
            return
        try:
            work = await self._js.get_msg(streams.JOBS_STREAM, sequence)
            request = event_pb2.TrainRequest.FromString(work.data or b"")
        except NotFoundError:
            return  # acknowledged or withdrawn meanwhile
        except DecodeError:
            log.warning("dropped a malformed job message at sequence %d", sequence)
            await self._js.delete_msg(streams.JOBS_STREAM, sequence)
            return
        reason = f"gave up after {deliveries} deliveries: each trainer stopped answering"
        changes = {"error": reason, "end_time": now()}
        if await self._store.transition(request.job_id, request.run, FAILED, changes):
            log.warning("job %s run %d failed: %s", request.job_id, request.run, reason)
            if (doc := await self._store.get(request.job_id)) is not None:
                await self._dispatcher.announce(doc)
        with contextlib.suppress(NotFoundError):
            await self._js.delete_msg(streams.JOBS_STREAM, sequence)
