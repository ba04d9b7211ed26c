"""The server interceptors, in process, on all four kinds of handler: auth, request ids and
access lines, undecodable requests, database outages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pymongo.errors import ServerSelectionTimeoutError

from scheduler.auth import current_user
from scheduler.calls import Context
from scheduler.interceptors import server_interceptors
from tuner.core import metadata
from tuner.core.logs import RequestIds
from tuner.v1 import tuner_service_pb2

Message = tuner_service_pb2.GetJobRequest  # a string field to echo: job_id
TOKEN = "alice-token-0123456789abcdef"
AUTHORIZED = ((metadata.AUTHORIZATION, f"Bearer {TOKEN}"),)
KINDS = ["unary_unary", "unary_stream", "stream_unary", "stream_stream"]
NOT_A_MESSAGE = b"\x0a\x02\xff\xfe"  # field 1, a string, that is not UTF-8
log = logging.getLogger("tests.echo")


def reply(request: Message) -> Message:
    if request.job_id == "db":
        raise ServerSelectionTimeoutError("no server answers")
    log.info("echoing %s", request.job_id)
    return Message(job_id=f"{current_user.get()}:{request.job_id}")


async def unary_unary(request: Message, context: Context) -> Message:
    return reply(request)


async def unary_stream(request: Message, context: Context) -> AsyncIterator[Message]:
    yield Message(job_id="first")
    yield reply(request)


async def stream_unary(requests: AsyncIterator[Message], context: Context) -> Message:
    return [reply(request) async for request in requests][-1]


async def stream_stream(
    requests: AsyncIterator[Message], context: Context
) -> AsyncIterator[Message]:
    async for request in requests:
        yield reply(request)


def echo_service() -> grpc.GenericRpcHandler:
    handlers = {
        kind: getattr(grpc, f"{kind}_rpc_method_handler")(
            behavior, Message.FromString, Message.SerializeToString
        )
        for kind, behavior in zip(
            KINDS, [unary_unary, unary_stream, stream_unary, stream_stream], strict=True
        )
    }
    return grpc.method_handlers_generic_handler("tuner.v1.Echo", handlers)


@pytest.fixture(scope="module")
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=server_interceptors({TOKEN: "alice"}))
    server.add_generic_rpc_handlers((echo_service(),))
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    await server.stop(None)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RequestIds())
    yield caplog


@dataclass
class Outcome:
    code: grpc.StatusCode
    details: str
    responses: list[Message]
    request_id: str


async def call(
    channel: grpc.aio.Channel,
    kind: str,
    *requests: bytes,
    headers: tuple[tuple[str, str], ...] = AUTHORIZED,
) -> Outcome:
    """Raw bytes in, so that they need not be a message; the answer decoded."""
    method: Any = getattr(channel, kind)(f"/tuner.v1.Echo/{kind}")
    streaming = kind.startswith("stream")
    answer = method(iter(requests) if streaming else requests[0], metadata=headers)
    responses = []
    try:
        if kind.endswith("stream"):
            async for data in answer:
                responses.append(Message.FromString(data))
        else:
            responses.append(Message.FromString(await answer))
    except grpc.aio.AioRpcError:
        pass
    initial = dict(await answer.initial_metadata() or ())
    return Outcome(
        await answer.code(), await answer.details(), responses, str(initial[metadata.REQUEST_ID])
    )


def echo(job_id: str) -> bytes:
    return Message(job_id=job_id).SerializeToString()


@pytest.mark.parametrize("kind", KINDS)
async def test_each_kind_runs_as_the_token_s_user_or_is_refused(
    channel: grpc.aio.Channel, kind: str
) -> None:
    served = await call(channel, kind, echo("hello"))
    assert served.code == grpc.StatusCode.OK, served.details
    assert served.responses[-1].job_id == "alice:hello"
    refused = await call(channel, kind, echo("hello"), headers=())
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED
    assert refused.responses == []


@pytest.mark.parametrize("kind", KINDS)
async def test_a_database_error_answers_unavailable_in_one_line(
    channel: grpc.aio.Channel, kind: str, logs: pytest.LogCaptureFixture
) -> None:
    outcome = await call(channel, kind, echo("db"))
    assert (outcome.code, outcome.details) == (
        grpc.StatusCode.UNAVAILABLE,
        "database unavailable, try again",
    )
    if kind == "unary_stream":
        assert [r.job_id for r in outcome.responses] == ["first"], "what was sent stays sent"
    warnings = [r for r in logs.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"/tuner.v1.Echo/{kind}: database unavailable: no server answers"
        f" [request {outcome.request_id}]"
    ]
    assert all(r.exc_info is None for r in logs.records)


@pytest.mark.parametrize("kind", KINDS)
async def test_bytes_that_are_no_request_answer_invalid_argument(
    channel: grpc.aio.Channel, kind: str, logs: pytest.LogCaptureFixture
) -> None:
    requests = (NOT_A_MESSAGE,) if kind.startswith("unary") else (echo("fine"), NOT_A_MESSAGE)
    outcome = await call(channel, kind, *requests)
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.details == "request: not a valid tuner.v1.GetJobRequest message"
    warnings = [r.getMessage() for r in logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not a valid" in warnings[0], warnings
    assert all(r.exc_info is None for r in logs.records)


async def test_a_call_s_id_is_the_client_s_sane_token_or_a_new_one(
    channel: grpc.aio.Channel, logs: pytest.LogCaptureFixture
) -> None:
    given = ((metadata.REQUEST_ID, "ci-run.42:7"), *AUTHORIZED)
    assert (
        await call(channel, "unary_unary", echo("a"), headers=given)
    ).request_id == "ci-run.42:7"
    for insane in ("", "has space", "x" * 65, "a;b=c", "../etc"):
        headers = ((metadata.REQUEST_ID, insane), *AUTHORIZED)
        request_id = (await call(channel, "unary_unary", echo("a"), headers=headers)).request_id
        assert len(request_id) == 16 and int(request_id, 16) >= 0
    first = await call(channel, "unary_unary", echo("a"))
    assert first.request_id != (await call(channel, "unary_unary", echo("a"))).request_id


async def test_one_access_line_a_call_and_the_id_on_the_handler_s_lines(
    channel: grpc.aio.Channel, logs: pytest.LogCaptureFixture
) -> None:
    outcome = await call(channel, "stream_stream", echo("x"), echo("y"))
    lines = [r.getMessage() for r in logs.records if f"[request {outcome.request_id}]" in r.msg]
    assert lines[:2] == [
        f"echoing x [request {outcome.request_id}]",
        f"echoing y [request {outcome.request_id}]",
    ]
    access = [r for r in logs.records if r.name == "scheduler.access"]
    assert len(access) == 1 and access[0].levelno == logging.INFO
    method, user, code, millis, request = access[0].getMessage().split(" ", 4)
    assert (method, user, code) == ("/tuner.v1.Echo/stream_stream", "alice", "OK")
    assert millis.endswith("ms") and float(millis[:-2]) >= 0
    assert request == f"[request {outcome.request_id}]"
    await call(channel, "unary_unary", echo("hi"), headers=())
    assert logs.records[-1].getMessage().split(" ")[:3] == [
        "/tuner.v1.Echo/unary_unary",
        "-",
        "UNAUTHENTICATED",
    ]


async def test_health_checks_pass_every_interceptor_and_log_at_debug(
    channel: grpc.aio.Channel, logs: pytest.LogCaptureFixture
) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    assert (await stub.Check(health_pb2.HealthCheckRequest())).status == 1
    watch = stub.Watch(health_pb2.HealthCheckRequest())  # a servicer that writes, not yields
    assert (await watch.read()).status == 1
    watch.cancel()
    for _ in range(100):  # the server learns of the cancel a moment later
        access = [r for r in logs.records if r.name == "scheduler.access"]
        if len(access) == 2:
            break
        await asyncio.sleep(0.01)
    assert [r.getMessage().split(" ")[:3] for r in access] == [
        ["/grpc.health.v1.Health/Check", "-", "OK"],
        ["/grpc.health.v1.Health/Watch", "-", "CANCELLED"],
    ]
    assert all(r.levelno == logging.DEBUG for r in access)
