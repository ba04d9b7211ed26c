"""Final models for tests: the checkpoints bucket made anew, SUCCEEDED jobs stored by hand, and
the scheduler's TunerService served in process over real gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ServerError
from nats.js.object_store import ObjectStore

from scheduler.dispatch import Dispatcher
from scheduler.interceptors import server_interceptors
from scheduler.jobs import Jobs
from scheduler.retention import RetentionPolicy
from scheduler.service import TunerService
from scheduler.status import Status
from scheduler.trainers import Trainers
from store import points
from store.documents import Document, new_job, now
from store.jobs import JobStore
from tests.support.processes import without_tuner_settings
from tests.support.servers import Nats
from tests.support.stack import REPO
from tuner.core import states, streams
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.v1 import job_pb2, tuner_service_pb2_grpc


async def fresh_bucket(js: JetStreamContext) -> ObjectStore:
    """The checkpoints bucket, empty."""
    with contextlib.suppress(NotFoundError):
        await js.delete_object_store(streams.CHECKPOINTS_BUCKET)
    # As with streams: nats-server may still be removing the deleted one's files.
    for _ in range(50):
        try:
            return await js.create_object_store(streams.CHECKPOINTS_BUCKET)
        except ServerError:
            await asyncio.sleep(0.1)
    return await js.create_object_store(streams.CHECKPOINTS_BUCKET)


async def no_bucket(js: JetStreamContext) -> None:
    with contextlib.suppress(NotFoundError):
        await js.delete_object_store(streams.CHECKPOINTS_BUCKET)


def model_bytes(size: int, seed: int = 0) -> bytes:
    """`size` bytes that differ from one 32-byte block to the next."""
    blocks = (hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(size // 32 + 1))
    return b"".join(blocks)[:size]


def config_id(hp: job_pb2.Hyperparameters) -> str:
    return job_id(canonical_key(normalized(hp)))


async def stored_job(
    store: JobStore,
    hp: job_pb2.Hyperparameters,
    state: int = states.SUCCEEDED,
    *,
    owner: str = "alice",
    accuracy: float = 0.9,
    ended: datetime | None = None,
    device: str = "cpu",
    ranked: bool = True,
) -> Document:
    """A job of `hp` stored as the scheduler would have left it in `state`; a SUCCEEDED one
    with its analysis point, and on the leaderboard unless not `ranked`."""
    hp = normalized(hp)
    key = canonical_key(hp)
    doc = new_job(job_id(key), key, hp, owner)
    assert await store.insert(doc)
    changes: dict[str, Any] = {}
    if state != states.QUEUED:
        changes = {"attempts": 1, "start_time": now()}
    if state == states.SUCCEEDED:
        changes["result"] = {
            "test_accuracy": accuracy,
            "test_loss": 0.1,
            "training_seconds": 10.0,
            "evaluation_seconds": 1.0,
            "device": device,
        }
    if state in states.TERMINAL:
        changes["end_time"] = changes["update_time"] = ended or now()
        changes["error"] = "" if state == states.SUCCEEDED else "it broke"
    if changes:
        await store.jobs.update_one(
            {"_id": doc["_id"]}, {"$set": {"state": states.name(state), **changes}}
        )
    got = await store.get(doc["_id"])
    assert got is not None
    if state == states.SUCCEEDED:
        await points.file_point(store, got)
        if ranked:
            await store.rank(got)
        got = await store.get(doc["_id"])
        assert got is not None
    return got


@contextlib.asynccontextmanager
async def serving(
    store: JobStore,
    nats: Nats,
    retention: RetentionPolicy | None = None,
    service: type[TunerService] = TunerService,
) -> AsyncIterator[str]:
    """TunerService, as the scheduler wires it and behind its interceptors (no tokens), on a
    free loopback port: its address."""
    trainers = Trainers()
    jobs = Jobs(store, Dispatcher(nats.nc, nats.js, store), 100)
    servicer = service(
        store,
        jobs,
        nats.js,
        trainers,
        Status(nats.nc, nats.js, store, trainers),
        retention=retention,
    )
    server = grpc.aio.server(interceptors=server_interceptors({}))
    tuner_service_pb2_grpc.add_TunerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def tuner_cli(*args: str, cwd: Path = REPO, timeout: float = 60) -> Ran:
    """`python -m tuner.cli ARGS` without the caller's TUNER_ settings, awaited so that a
    server in this event loop goes on answering meanwhile."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tuner.cli",
        *args,
        cwd=cwd,
        env={**without_tuner_settings(), "PYTHONPATH": str(REPO)},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())
