"""The sweep RPCs of TunerService."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from scheduler.auth import current_user
from scheduler.search import check_spec
from scheduler.sweeps import SweepDriver
from store.documents import Document
from store.sweeps import SweepStore, new_sweep, sweep_from
from tuner.core.hyperparameters import FieldError
from tuner.v1 import tuner_service_pb2

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = grpc.aio.ServicerContext

SWEEP_ID = re.compile(r"[0-9a-f]{32}")
WATCH_EVERY = 0.5


class SweepHandlers:
    """Mixed into TunerService; needs `_sweeps` and `_driver`."""

    _sweeps: SweepStore
    _driver: SweepDriver

    async def _sweep(self, sweep_id: str, context: Context) -> Document:
        if not SWEEP_ID.fullmatch(sweep_id):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "sweep_id: must be 32 lowercase hex digits"
            )
        doc = await self._sweeps.get(sweep_id)
        if doc is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"sweep_id: no sweep {sweep_id} exists")
            raise AssertionError("unreachable")
        return doc

    async def CreateSweep(
        self, request: tuner_service_pb2.CreateSweepRequest, context: Context
    ) -> tuner_service_pb2.CreateSweepResponse:
        try:
            check_spec(request.spec)
        except FieldError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        doc = new_sweep(uuid.uuid4().hex, request.spec, current_user.get())
        await self._sweeps.insert(doc)
        return tuner_service_pb2.CreateSweepResponse(sweep=sweep_from(doc))

    async def GetSweep(
        self, request: tuner_service_pb2.GetSweepRequest, context: Context
    ) -> tuner_service_pb2.GetSweepResponse:
        return tuner_service_pb2.GetSweepResponse(
            sweep=sweep_from(await self._sweep(request.sweep_id, context))
        )

    async def ListSweeps(
        self, request: tuner_service_pb2.ListSweepsRequest, context: Context
    ) -> tuner_service_pb2.ListSweepsResponse:
        size = request.page_size or 20
        if not 1 <= size <= 100:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"page_size: must be between 1 and 100, got {request.page_size}",
            )
        docs = await self._sweeps.list_owned(current_user.get(), size)
        return tuner_service_pb2.ListSweepsResponse(sweeps=[sweep_from(d) for d in docs])

    async def CancelSweep(
        self, request: tuner_service_pb2.CancelSweepRequest, context: Context
    ) -> tuner_service_pb2.CancelSweepResponse:
        doc = await self._sweep(request.sweep_id, context)
        if doc["owner"] != current_user.get():
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "sweep_id: the sweep belongs to another user"
            )
        if not await self._sweeps.finish(doc["_id"], "CANCELLED"):
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"sweep_id: the sweep is already {doc['state']}",
            )
        await self._driver.cancel(doc)
        doc = await self._sweep(request.sweep_id, context)
        return tuner_service_pb2.CancelSweepResponse(sweep=sweep_from(doc))

    async def WatchSweep(
        self, request: tuner_service_pb2.WatchSweepRequest, context: Context
    ) -> AsyncIterator[tuner_service_pb2.WatchSweepResponse]:
        last = None
        while True:
            doc = await self._sweep(request.sweep_id, context)
            if doc["update_time"] != last:
                last = doc["update_time"]
                yield tuner_service_pb2.WatchSweepResponse(sweep=sweep_from(doc))
            if doc["state"] != "RUNNING":
                return
            await asyncio.sleep(WATCH_EVERY)
