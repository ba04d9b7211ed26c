"""GetStatus: what the scheduler reaches (database, NATS, JetStream) and how much work waits.

Each part is asked on its own with a short timeout, so that one that is down is named in
the answer instead of failing or stalling the call. Only the jobs that wait or run are
counted: they are bounded by the work in flight, while a count of finished jobs reads the
history (SecantusDB reads every document a filter matches): at 200,000 jobs counting the
finished states to 1,000 each took 1.1 s and could pass the part's timeout, so a slow count
would have called a healthy database unreachable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext

from scheduler.trainers import Trainers
from store.jobs import JobStore
from tuner.core import streams
from tuner.core.states import QUEUED, RUNNING
from tuner.v1 import tuner_service_pb2

log = logging.getLogger(__name__)

PART_TIMEOUT_SECONDS = 2.0
COUNTED = (QUEUED, RUNNING)
COUNT_CAP = 1000  # jobs counted per state: past it the answer says "at least"
T = TypeVar("T")


async def _within(call: Awaitable[T]) -> T:
    return await asyncio.wait_for(call, PART_TIMEOUT_SECONDS)


def _why(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"unreachable: no answer within {PART_TIMEOUT_SECONDS:g} s"
    return f"{type(error).__name__}: {error}"[:200]


class Status:
    def __init__(self, nc: Client, js: JetStreamContext, store: JobStore, trainers: Trainers):
        self._nc = nc
        self._js = js
        self._store = store
        self._trainers = trainers

    async def gather(self) -> tuner_service_pb2.GetStatusResponse:
        response = tuner_service_pb2.GetStatusResponse(trainers=self._trainers.live())
        database, nats, jetstream = await asyncio.gather(
            self._database(response), self._nats(), self._jetstream(response)
        )
        response.components.extend([database, nats, jetstream])
        return response

    async def _database(
        self, response: tuner_service_pb2.GetStatusResponse
    ) -> tuner_service_pb2.ComponentStatus:
        part = tuner_service_pb2.ComponentStatus(name="database")
        try:
            await _within(self._store.client.admin.command("ping"))
            for state in COUNTED:
                count = await _within(self._store.count_in_state(state, COUNT_CAP))
                response.jobs.add(state=state, count=count, at_least=count >= COUNT_CAP)
        except Exception as error:
            log.warning("status: the database does not answer: %s", _why(error))
            del response.jobs[:]
            part.detail = _why(error)
            return part
        part.reachable = True
        part.detail = "answers"
        return part

    async def _nats(self) -> tuner_service_pb2.ComponentStatus:
        part = tuner_service_pb2.ComponentStatus(name="nats")
        url = self._nc.connected_url
        if not self._nc.is_connected or url is None:
            part.detail = "not connected (reconnecting)"
            return part
        where = f"{url.hostname}:{url.port}"  # never the credentials in the URL
        try:
            await _within(self._nc.flush())
        except Exception as error:
            part.detail = f"{where}: {_why(error)}"
            return part
        part.reachable = True
        part.detail = where
        return part

    async def _jetstream(
        self, response: tuner_service_pb2.GetStatusResponse
    ) -> tuner_service_pb2.ComponentStatus:
        part = tuner_service_pb2.ComponentStatus(name="jetstream")
        try:
            jobs = await _within(self._js.stream_info(streams.JOBS_STREAM))
            trainers = await _within(
                self._js.consumer_info(streams.JOBS_STREAM, streams.TRAINERS_CONSUMER)
            )
            scheduler = await _within(
                self._js.consumer_info(streams.EVENTS_STREAM, streams.SCHEDULER_CONSUMER)
            )
        except Exception as error:
            log.warning("status: JetStream does not answer: %s", _why(error))
            part.detail = _why(error)
            return part
        response.jobs_stream.name = streams.JOBS_STREAM
        response.jobs_stream.messages = jobs.state.messages
        for target, info, stream in (
            (response.trainers_consumer, trainers, streams.JOBS_STREAM),
            (response.scheduler_consumer, scheduler, streams.EVENTS_STREAM),
        ):
            target.stream = stream
            target.name = info.name
            target.pending = info.num_pending or 0
            target.ack_pending = info.num_ack_pending or 0
            target.redelivered = info.num_redelivered or 0
        part.reachable = True
        part.detail = "streams and consumers answer"
        return part
