"""Access: tokens, owners, limits, TLS, and secrets kept out of the logs."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scheduler.config import Config
from tests.support.hyperparameters import mlp
from tests.support.stack import RunningStack, start_stack
from tuner.client import TunerClient
from tuner.core.env import ConfigError
from tuner.v1 import job_pb2, tuner_service_pb2, tuner_service_pb2_grpc

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef01"
NATS_PASSWORD = "nats-pw-s3cr3t-do-not-log"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, certificate: tuple[Path, Path]
) -> Iterator[RunningStack]:
    """A stack with bearer tokens, TLS, a password on NATS and a cap of 2 active jobs."""
    cert, key = certificate
    tokens = tmp_path_factory.mktemp("tokens") / "tokens"
    tokens.write_text(f"# user: token\nalice: {ALICE}\nbob: {BOB}\n")
    state = tmp_path_factory.mktemp("secured")
    running = start_stack(
        state,
        data_dir,
        trainers=0,  # jobs stay queued: this is about who may do what
        nats_user="tuner",
        nats_password=NATS_PASSWORD,
        TUNER_TOKENS_FILE=str(tokens),
        TUNER_TLS_CERT_FILE=str(cert),
        TUNER_TLS_KEY_FILE=str(key),
        TUNER_TLS_CA_FILE=str(cert),
        TUNER_MAX_ACTIVE_PER_USER="2",
    )
    try:
        yield running
    finally:
        running.stack.stop()


def client(running: RunningStack, token: str, cert: Path, user: str = "") -> TunerClient:
    return TunerClient(running.address, user or "nobody", token=token, ca_file=str(cert))


@pytest.fixture
async def alice(
    secured: RunningStack, certificate: tuple[Path, Path]
) -> AsyncIterator[TunerClient]:
    async with client(secured, ALICE, certificate[0]) as c:
        yield c


@pytest.fixture
async def bob(secured: RunningStack, certificate: tuple[Path, Path]) -> AsyncIterator[TunerClient]:
    async with client(secured, BOB, certificate[0]) as c:
        yield c


async def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return raised.value.code()


async def test_a_missing_or_wrong_token_is_refused(
    secured: RunningStack, certificate: tuple[Path, Path]
) -> None:
    for token in ("", "x" * 20, ALICE + "x"):
        async with client(secured, token, certificate[0], user="alice") as anyone:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await anyone.submit(mlp(seed=4001))
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert await code_of(anyone.list()) == grpc.StatusCode.UNAUTHENTICATED
            assert await code_of(anyone.leaderboard()) == grpc.StatusCode.UNAUTHENTICATED
            assert await code_of(anyone.caller()) == grpc.StatusCode.UNAUTHENTICATED


async def test_the_token_names_the_user_and_owners_keep_their_jobs(
    alice: TunerClient, bob: TunerClient
) -> None:
    assert (await alice.caller(), await bob.caller()) == ("alice", "bob")
    job = (await alice.submit(mlp(seed=4002))).job
    assert job.owner == "alice"
    assert job.id in [j.id for j in (await alice.list()).jobs]
    assert job.id not in [j.id for j in (await bob.list()).jobs]
    assert await code_of(bob.cancel(job.id)) == grpc.StatusCode.PERMISSION_DENIED
    assert (await bob.get(job.id)).owner == "alice"
    assert (await alice.cancel(job.id)).state == job_pb2.JOB_STATE_CANCELLED


async def test_a_user_cannot_flood_the_queue(alice: TunerClient, bob: TunerClient) -> None:
    first = (await alice.submit(mlp(seed=4010))).job
    await alice.submit(mlp(seed=4011))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await alice.submit(mlp(seed=4012))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "alice has 2 jobs queued or running" in (raised.value.details() or "")
    assert (await alice.submit(mlp(seed=4010))).deduplicated, "a duplicate costs nothing"
    assert not (await bob.submit(mlp(seed=4012))).deduplicated, "others are not held back"
    await alice.cancel(first.id)
    assert not (await alice.submit(mlp(seed=4013))).deduplicated


async def test_oversized_requests_are_refused(
    secured: RunningStack, certificate: tuple[Path, Path]
) -> None:
    credentials = grpc.ssl_channel_credentials(certificate[0].read_bytes())
    async with grpc.aio.secure_channel(secured.address, credentials) as channel:
        stub = tuner_service_pb2_grpc.TunerServiceStub(channel)
        request = tuner_service_pb2.GetJobRequest(job_id="a" * 2_000_000)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetJob(request, metadata=(("authorization", f"Bearer {ALICE}"),))
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_health_answers_without_a_token_but_not_without_tls(
    secured: RunningStack, certificate: tuple[Path, Path]
) -> None:
    credentials = grpc.ssl_channel_credentials(certificate[0].read_bytes())
    async with grpc.aio.secure_channel(secured.address, credentials) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    async with grpc.aio.insecure_channel(secured.address) as plain:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await health_pb2_grpc.HealthStub(plain).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_secrets_never_reach_the_logs(
    secured: RunningStack, alice: TunerClient, certificate: tuple[Path, Path]
) -> None:
    await alice.submit(mlp(seed=4011))  # a duplicate: alice is at her cap
    async with client(secured, BOB + "wrong", certificate[0]) as wrong:
        await code_of(wrong.list())
    logs = "".join(secured.log(name) for name in ("scheduler", "nats", "secantusdb"))
    assert "by alice" in logs
    for secret in (ALICE, BOB, NATS_PASSWORD):
        assert secret not in logs


def test_an_open_scheduler_needs_tokens() -> None:
    with pytest.raises(ConfigError, match=re.escape("TUNER_LISTEN=0.0.0.0:50051 is reachable")):
        Config.from_env({"TUNER_LISTEN": "0.0.0.0:50051"})
    assert Config.from_env({"TUNER_LISTEN": "0.0.0.0:50051", "TUNER_TOKENS": f"a: {ALICE}"})
    assert Config.from_env({"TUNER_LISTEN": "[::1]:50051"}).tokens == {}
    with pytest.raises(ConfigError, match="expected 'user: token'"):
        Config.from_env({"TUNER_TOKENS": "alice: short"})
    with pytest.raises(ConfigError, match="TUNER_ACK_WAIT_SECONDS: expected a number"):
        Config.from_env({"TUNER_ACK_WAIT_SECONDS": "soon"})
