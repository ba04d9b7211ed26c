"""deploy/docker/healthcheck.py, the scheduler image's health check, against a real gRPC server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.deploy import files
from tuner.stack import free_port

SCRIPT = files.REPO / "deploy" / "docker" / "healthcheck.py"


@pytest.fixture
def server() -> Iterator[tuple[str, health.HealthServicer]]:
    servicer = health.HealthServicer()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        srv.stop(None)


def check(*args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, timeout=30).returncode


def test_healthy_only_while_the_server_says_serving(
    server: tuple[str, health.HealthServicer],
) -> None:
    address, servicer = server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert check(address) == 0
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert check(address) == 1


def test_the_default_address_is_the_port_of_tuner_listen(
    server: tuple[str, health.HealthServicer],
) -> None:
    address, servicer = server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = address.rpartition(":")[2]
    assert check(env={"TUNER_LISTEN": f"0.0.0.0:{port}"}) == 0


def test_unhealthy_when_nothing_answers() -> None:
    assert check(f"127.0.0.1:{free_port()}") == 1
