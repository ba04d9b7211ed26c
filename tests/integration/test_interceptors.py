"""What every call gets over real gRPC: an access line and a request id, UNAVAILABLE while the
database is down."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
import pytest

from tests.support.hyperparameters import mlp
from tests.support.stack import RunningStack, StartStack
from tuner.client import TunerClient
from tuner.core import metadata
from tuner.v1 import tuner_service_pb2, tuner_service_pb2_grpc

ALICE = ((metadata.USER, "alice"),)
NOBODY = "ab" * 16  # no job or sweep has this id


def request_id(headers: Any) -> str:
    return str(dict(headers or ())[metadata.REQUEST_ID])


async def test_each_call_has_an_access_line_and_its_id_is_on_the_handler_s_lines(
    own_stack: StartStack,
) -> None:
    running = own_stack(trainers=0)
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = tuner_service_pb2_grpc.TunerServiceStub(channel)
        request = tuner_service_pb2.SubmitJobRequest(hyperparameters=mlp(seed=5101))
        submit = stub.SubmitJob(request, metadata=(*ALICE, (metadata.REQUEST_ID, "it-5101")))
        job = (await submit).job
        assert request_id(await submit.initial_metadata()) == "it-5101"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetJob(tuner_service_pb2.GetJobRequest(job_id=NOBODY), metadata=ALICE)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    generated = request_id(raised.value.initial_metadata())
    assert re.fullmatch(r"[0-9a-f]{16}", generated), "a new id where the client gave none"
    log = await logged(running, r"/GetJob alice NOT_FOUND")
    assert re.search(rf"job {job.id} run 1 submitted by alice: .* \[request it-5101\]\n", log)
    assert re.search(
        r" INFO scheduler\.access: /tuner\.v1\.TunerService/SubmitJob alice OK \d+\.\dms"
        r" \[request it-5101\]\n",
        log,
    )
    assert re.search(
        r" INFO scheduler\.access: /tuner\.v1\.TunerService/GetJob alice NOT_FOUND \d+\.\dms"
        rf" \[request {generated}\]\n",
        log,
    )
    assert "grpc.health.v1" not in log, "probes are logged at DEBUG"


async def logged(running: RunningStack, *patterns: str, timeout: float = 10) -> str:
    """The scheduler's log once it holds each pattern: an aborted call's answer goes first."""
    deadline = time.monotonic() + timeout
    while True:
        log = running.log("scheduler")
        missing = [pattern for pattern in patterns if not re.search(pattern, log)]
        if not missing:
            return log
        assert time.monotonic() < deadline, missing
        await asyncio.sleep(0.1)


async def code_of(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def first(stream: AsyncIterator[object]) -> object:
    return await anext(stream)


async def test_while_the_database_is_down_every_call_answers_unavailable(
    own_stack: StartStack,
) -> None:
    running = own_stack(trainers=0)
    async with TunerClient(running.address, "alice") as client:
        job = (await client.submit(mlp(seed=5102))).job
        database = running.stack.process("secantusdb")
        database.send_signal(signal.SIGTERM)
        database.wait(30)
        calls: dict[str, Awaitable[object]] = {
            "SubmitJob": client.submit(mlp(seed=5103)),
            "GetJob": client.get(job.id),
            "ListJobs": client.list(),
            "WatchJob": first(client.watch(job.id)),
            "GetSweep": client.get_sweep(NOBODY),
            "ListSweeps": client.list_sweeps(),
            "WatchSweep": first(client.watch_sweep(NOBODY)),
        }
        answers = await asyncio.gather(*map(code_of, calls.values()))
    unavailable = (grpc.StatusCode.UNAVAILABLE, "database unavailable, try again")
    assert dict(zip(calls, answers, strict=True)) == dict.fromkeys(calls, unavailable)
    log = await logged(
        running,
        *(rf"WARNING .*/{method}: database unavailable: .*\[request \w+\]\n" for method in calls),
        *(rf"scheduler\.access: \S+/{method} alice UNAVAILABLE " for method in calls),
    )
    assert "Traceback" not in log
