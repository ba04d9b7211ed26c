"""Around every call: request ids and access lines, undecodable requests, database outages."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from scheduler.auth import AuthInterceptor, current_user
from scheduler.calls import Context, Deserializer, Handler, wrap
from scheduler.metrics import Metrics
from scheduler.outages import DATABASE_OUTAGES
from tuner.core import metadata
from tuner.core.logs import current_request

log = logging.getLogger(__name__)
access = logging.getLogger("scheduler.access")

REQUEST_ID = re.compile(r"[\w.:-]{1,64}")
QUIET_PREFIX = "/grpc.health.v1."  # probes ask every few seconds
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]


def server_interceptors(
    tokens: Mapping[str, str], metrics: Metrics | None = None
) -> list[grpc.aio.ServerInterceptor]:
    """Outermost first: the access line sees every answer, auth comes before anything else."""
    return [AccessLog(metrics), AuthInterceptor(tokens), RefuseUndecodable(), DatabaseOutage()]


def _header(details: grpc.HandlerCallDetails, key: str) -> str:
    for name, value in details.invocation_metadata or ():
        if name == key:
            return str(value)
    return ""


class AccessLog(grpc.aio.ServerInterceptor):
    """One line per call (method, user, status, milliseconds) and a request id: the client's
    `tuner-request-id` if it is a short token, else a new one, sent back and on every log line.
    Each call is also counted and timed in tuner_rpc_duration_seconds (method, code)."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics or Metrics()

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        given = _header(details, metadata.REQUEST_ID)
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        logged = functools.partial(_logged, self._metrics, details.method, request_id)
        return wrap(handler, logged)


@asynccontextmanager
async def _logged(
    metrics: Metrics, method: str, request_id: str, context: Context
) -> AsyncIterator[None]:
    # Not reset afterwards: each call runs in a task of its own, and its context ends with it.
    current_request.set(request_id)
    started = time.perf_counter()
    outcome = grpc.StatusCode.OK
    try:
        await context.send_initial_metadata(((metadata.REQUEST_ID, request_id),))
        yield
    except (asyncio.CancelledError, GeneratorExit):
        outcome = grpc.StatusCode.CANCELLED
        raise
    except Exception:
        outcome = grpc.StatusCode.UNKNOWN
        raise
    finally:
        code = context.code() or outcome  # abort() and set_code() set it
        seconds = time.perf_counter() - started
        code_name = str(getattr(code, "name", code))
        metrics.rpc_duration.labels(method, code_name).observe(seconds)
        access.log(
            logging.DEBUG if method.startswith(QUIET_PREFIX) else logging.INFO,
            "%s %s %s %.1fms",
            method,
            current_user.get("-"),
            code_name,
            seconds * 1000,
        )


UNDECODABLE = object()  # what the deserializer gives for bytes that are not a request


def _tolerant(deserializer: Deserializer) -> Deserializer:
    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return UNDECODABLE

    return deserialize


class RefuseUndecodable(grpc.aio.ServerInterceptor):
    """Bytes that are not a valid request answer INVALID_ARGUMENT, not UNKNOWN and a traceback."""

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        message_class = getattr(handler.request_deserializer, "__self__", None)  # X.FromString
        name = getattr(getattr(message_class, "DESCRIPTOR", None), "full_name", "request")
        refuse = functools.partial(_refuse_undecodable, details.method, name)
        return wrap(handler, admit=refuse, deserializer=_tolerant(handler.request_deserializer))


async def _refuse_undecodable(method: str, name: str, request: Any, context: Context) -> None:
    if request is UNDECODABLE:
        log.warning("%s: the request is not a valid %s message", method, name)
        details = f"request: not a valid {name} message"
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, details)


class DatabaseOutage(grpc.aio.ServerInterceptor):
    """A database error, in any call, answers UNAVAILABLE: the client may try again."""

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        return wrap(handler, functools.partial(_database_outage, details.method))


@asynccontextmanager
async def _database_outage(method: str, context: Context) -> AsyncIterator[None]:
    try:
        yield
    except DATABASE_OUTAGES as error:
        log.warning("%s: database unavailable: %s", method, error)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable, try again")
