"""The SweepService gRPC handlers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from scheduler.auth import current_user
from scheduler.calls import serialized
from scheduler.fanout import Encoded, Hub
from scheduler.sweeps.announce import Announcer
from scheduler.sweeps.driver import SweepDriver
from scheduler.sweeps.search import check_spec
from scheduler.validation import valid_id, valid_page_size
from store.documents import Document
from store.sweeps import SweepStore, new_sweep, sweep_from, version
from tuner.core import states, streams
from tuner.core.hyperparameters import FieldError
from tuner.v1 import sweep_pb2, sweep_pb2_grpc

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = grpc.aio.ServicerContext


class SweepService(sweep_pb2_grpc.SweepServiceServicer):
    def __init__(
        self,
        sweeps: SweepStore,
        driver: SweepDriver,
        announcer: Announcer,
        js: JetStreamContext,
    ) -> None:
        self._sweeps = sweeps
        self._driver = driver
        self._announcer = announcer
        # Watchers start at the newest change, so a subject is read from the stream's end.
        self._hub = Hub(js, sweep_pb2.SweepChanged.FromString, backlog=64, newest_only=True)
        self._frames = Encoded[sweep_pb2.SweepChanged](
            lambda c: sweep_pb2.WatchSweepResponse(sweep=c.sweep).SerializeToString()
        )

    async def _sweep(self, sweep_id: str, context: Context) -> Document:
        doc = await self._sweeps.get(await valid_id(sweep_id, "sweep_id", context))
        if doc is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"sweep_id: no sweep {sweep_id} exists")
            raise AssertionError("unreachable")
        return doc

    async def CreateSweep(
        self, request: sweep_pb2.CreateSweepRequest, context: Context
    ) -> sweep_pb2.CreateSweepResponse:
        try:
            check_spec(request.spec)
        except FieldError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        doc = new_sweep(uuid.uuid4().hex, request.spec, current_user.get())
        await self._sweeps.insert(doc)
        await self._announcer.announce(doc)
        self._driver.wake(doc["_id"])  # its first trials are queued at once, by this replica
        return sweep_pb2.CreateSweepResponse(sweep=sweep_from(doc))

    async def GetSweep(
        self, request: sweep_pb2.GetSweepRequest, context: Context
    ) -> sweep_pb2.GetSweepResponse:
        return sweep_pb2.GetSweepResponse(
            sweep=sweep_from(await self._sweep(request.sweep_id, context))
        )

    async def ListSweeps(
        self, request: sweep_pb2.ListSweepsRequest, context: Context
    ) -> sweep_pb2.ListSweepsResponse:
        size = await valid_page_size(request.page_size, context)
        docs = await self._sweeps.list_owned(current_user.get(), size)
        return sweep_pb2.ListSweepsResponse(sweeps=[sweep_from(d) for d in docs])

    async def CancelSweep(
        self, request: sweep_pb2.CancelSweepRequest, context: Context
    ) -> sweep_pb2.CancelSweepResponse:
        doc = await self._sweep(request.sweep_id, context)
        if doc["owner"] != current_user.get():
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "sweep_id: the sweep belongs to another user"
            )
        if not await self._sweeps.finish(doc["_id"], states.SWEEP_CANCELLED):
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"sweep_id: the sweep is already {doc['state']}",
            )
        await self._driver.cancel(doc)
        doc = await self._sweep(request.sweep_id, context)
        await self._announcer.announce(doc)
        return sweep_pb2.CancelSweepResponse(sweep=sweep_from(doc))

    async def WatchSweep(
        self, request: sweep_pb2.WatchSweepRequest, context: Context
    ) -> AsyncIterator[sweep_pb2.WatchSweepResponse]:
        await valid_id(request.sweep_id, "sweep_id", context)
        try:
            # Every change stored after the read below is announced after this sequence.
            after = await self._hub.last_sequence()
        except (NatsError, TimeoutError):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "events unavailable, try again")
            raise
        doc = await self._sweep(request.sweep_id, context)
        yield sweep_pb2.WatchSweepResponse(sweep=sweep_from(doc))
        if states.sweep_of(doc) != states.SWEEP_RUNNING:
            return
        seen = version(doc)
        async for change in self._hub.events(streams.sweep_subject(doc["_id"]), after):
            if change.version <= seen:
                continue  # announced before the read, or a repeat
            seen = change.version
            yield serialized(self._frames(change))
            if change.sweep.state != states.SWEEP_RUNNING:
                return
