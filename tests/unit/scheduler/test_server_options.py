"""The scheduler's gRPC server options: calls that arrive while the server's event loop is busy
wait for it, where grpc's defaults cancel them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest

from scheduler.main import SERVER_OPTIONS

BURST = 3_500  # past grpc's default hard limit of 3,000 calls waiting to be taken up
METHOD = "/test.Busy/Call"

# One server, its options from argv. The first call blocks its event loop until a line comes
# on stdin, as writing events to thousands of watchers keeps it busy; the rest echo.
SERVER = """
import asyncio, json, sys
import grpc

async def call(request, context):
    if request == b"block":
        print("blocked", flush=True)
        sys.stdin.readline()
    return request

async def main():
    server = grpc.aio.server(options=[tuple(o) for o in json.loads(sys.argv[1])])
    handler = grpc.unary_unary_rpc_method_handler(call)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Busy", {"Call": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()

asyncio.run(main())
"""


@pytest.fixture
def busy_server(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    options = json.dumps(request.param)
    with subprocess.Popen(
        [sys.executable, "-c", SERVER, options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            yield server
        finally:
            server.kill()


async def burst_while_busy(server: subprocess.Popen[str]) -> list[grpc.StatusCode]:
    """Blocks the server's loop, sends BURST calls meanwhile, frees it: each call's code."""
    assert server.stdout is not None and server.stdin is not None
    port = int(server.stdout.readline())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
        blocker = asyncio.ensure_future(call(b"block", timeout=60))
        assert await asyncio.to_thread(server.stdout.readline) == "blocked\n"

        async def one(i: int) -> grpc.StatusCode:
            try:
                await call(str(i).encode(), timeout=60)
                return grpc.StatusCode.OK
            except grpc.aio.AioRpcError as error:
                return error.code()

        calls = [asyncio.ensure_future(one(i)) for i in range(BURST)]
        await asyncio.sleep(2)  # for the client to send them all while the server is blocked
        server.stdin.write("go\n")
        server.stdin.flush()
        await blocker
        return list(await asyncio.gather(*calls))


@pytest.mark.parametrize("busy_server", [SERVER_OPTIONS], indirect=True)
async def test_calls_that_come_while_the_loop_is_busy_wait_for_it(
    busy_server: subprocess.Popen[str],
) -> None:
    codes = await burst_while_busy(busy_server)
    assert codes.count(grpc.StatusCode.OK) == BURST


@pytest.mark.parametrize("busy_server", [[]], indirect=True)
async def test_grpcs_defaults_would_cancel_some_of_them(
    busy_server: subprocess.Popen[str],
) -> None:
    """Why the options are set: what the same burst meets without them."""
    codes = await burst_while_busy(busy_server)
    assert codes.count(grpc.StatusCode.OK) < BURST
