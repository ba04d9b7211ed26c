"""The spine end to end: real nats-server, SecantusDB, scheduler and trainer, over real gRPC."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from nats.js.api import StreamInfo
from pymongo.database import Database

from tests.support.hyperparameters import cnn, mlp
from tests.support.jobs import history, kinds, wait_for
from tests.support.stack import RunningStack, mongo_client
from tuner.client import TunerClient
from tuner.core import streams
from tuner.v1 import job_pb2

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
RUNNING = job_pb2.JOB_STATE_RUNNING
CANCELLED = job_pb2.JOB_STATE_CANCELLED
QUEUED = job_pb2.JOB_STATE_QUEUED


@pytest.fixture
async def client(running_stack: RunningStack) -> AsyncIterator[TunerClient]:
    async with TunerClient(running_stack.address, "alice") as c:
        yield c


async def test_an_mlp_job_trains_and_its_watcher_sees_every_event_in_order(
    client: TunerClient,
) -> None:
    submitted = await client.submit(mlp(seed=1001))
    assert not submitted.deduplicated
    assert submitted.job.state == QUEUED
    events = await history(client, submitted.job.id)

    sequences = [e.sequence for e in events]
    assert sequences == sorted(set(sequences)), "ordered, nothing twice"
    seen = kinds(events)
    assert seen[0] == "JOB_STATE_QUEUED"
    assert seen[-1] == "JOB_STATE_SUCCEEDED"
    # the scheduler records RUNNING while the trainer may already report progress
    assert seen.index("started") < seen.index("progress")
    assert seen.index("started") < seen.index("JOB_STATE_RUNNING") < seen.index("succeeded")
    assert seen.index("epoch_completed") < seen.index("succeeded") < len(seen) - 1
    progress = [e.progress for e in events if e.HasField("progress")]
    assert [p.step for p in progress] == sorted(p.step for p in progress)
    assert progress[-1].step == progress[-1].total_steps > 0, "the epoch end is reported"

    job = await client.get(submitted.job.id)
    assert job.state == SUCCEEDED
    assert job.result.test_accuracy >= 0.95
    assert job.result.training_duration.ToNanoseconds() > 0
    assert job.result.evaluation_duration.ToNanoseconds() > 0
    assert job.attempts == 1
    assert [m.epoch for m in job.history] == [1]
    assert job.owner == "alice"
    assert job.id in [j.id for j in await client.leaderboard(50)]


async def test_a_duplicate_submission_returns_the_job_and_trains_nothing(
    client: TunerClient, running_stack: RunningStack
) -> None:
    first = await client.submit(mlp(seed=1001))
    job = await wait_for(client, first.job.id, SUCCEEDED)
    async with TunerClient(running_stack.address, "bob") as bob:
        # the same configuration, spelled differently
        again = await bob.submit(mlp(seed=1001, learning_rate=float("1e-3")))
    assert again.deduplicated
    assert again.job.id == job.id
    assert again.job.state == SUCCEEDED
    assert again.job.result.test_accuracy == job.result.test_accuracy
    assert again.job.owner == "alice"
    assert kinds(await history(client, job.id)).count("started") == 1
    assert running_stack.log("trainer-1").count(f"job {job.id} run 1 attempt 1: training") == 1


async def test_a_watcher_that_reconnects_misses_nothing_and_sees_nothing_twice(
    client: TunerClient,
) -> None:
    submitted = await client.submit(mlp(seed=1002, batch_size=128))
    first_part = []
    async for response in client.watch(submitted.job.id):
        if response.WhichOneof("kind") == "event":
            first_part.append(response.event)
            if response.event.HasField("progress"):
                break  # the connection drops mid-job
    rest = await history(client, submitted.job.id, after=first_part[-1].sequence)
    everything = await history(client, submitted.job.id)
    assert [e.sequence for e in first_part + rest] == [e.sequence for e in everything]
    assert first_part + rest == everything
    assert kinds(rest)[-1] == "JOB_STATE_SUCCEEDED"


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"epochs": 0}, "hyperparameters.epochs"),
    ({"epochs": 101}, "hyperparameters.epochs"),
    ({"learning_rate": float("nan")}, "hyperparameters.learning_rate"),
    ({"learning_rate": float("inf")}, "hyperparameters.learning_rate"),
    ({"learning_rate": 0.0}, "hyperparameters.learning_rate"),
    ({"learning_rate": 11.0}, "hyperparameters.learning_rate"),
    ({"batch_size": 0}, "hyperparameters.batch_size"),
    ({"batch_size": 9000}, "hyperparameters.batch_size"),
    ({"dataset": 7}, "hyperparameters.dataset"),
    ({"model": 7}, "hyperparameters.model"),
    ({"optimizer": 7}, "hyperparameters.optimizer"),
    ({"seed": -5}, "hyperparameters.seed"),
]


async def jobs_stream(running_stack: RunningStack) -> StreamInfo:
    nc = await streams.connect(running_stack.nats_url, "test")
    try:
        return await nc.jetstream().stream_info(streams.JOBS_STREAM)
    finally:
        await nc.close()


async def test_invalid_input_is_refused_and_changes_nothing(
    client: TunerClient, running_stack: RunningStack
) -> None:
    with mongo_client(running_stack.mongo_uri) as mongo:
        await refuse_invalid_input(client, running_stack, mongo.tuner)


async def refuse_invalid_input(
    client: TunerClient, running_stack: RunningStack, db: Database[dict[str, Any]]
) -> None:
    before = list(db.jobs.find({}, {"_id": 1, "state": 1, "update_time": 1}))
    queued_before = (await jobs_stream(running_stack)).state.last_seq
    for fields, name in INVALID:
        for call in (client.submit, client.find):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call(mlp(**{"seed": 1999, **fields}))
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            details = raised.value.details() or ""
            assert details.startswith(name + ": must be"), details
    for bad in ("", "nope", "0" * 31, "G" * 32, "0" * 33):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.get(bad)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "job_id" in (raised.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.get("0" * 32)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.cancel("f" * 32)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    for size in (-1, 101):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.list(page_size=size)
        assert (raised.value.details() or "").startswith("page_size: must be")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.list(page_token="not-a-token")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.leaderboard(51)
    assert (raised.value.details() or "").startswith("limit: must be between 1 and 50")
    assert list(db.jobs.find({}, {"_id": 1, "state": 1, "update_time": 1})) == before
    assert (await jobs_stream(running_stack)).state.last_seq == queued_before


async def test_cancelling_a_queued_and_a_running_job(
    client: TunerClient, running_stack: RunningStack
) -> None:
    running = (await client.submit(cnn(seed=1003))).job
    await wait_for(client, running.id, RUNNING)
    queued = (await client.submit(mlp(seed=1004))).job
    assert (await client.get(queued.id)).state == QUEUED

    async with TunerClient(running_stack.address, "mallory") as mallory:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await mallory.cancel(running.id)
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED

    assert (await client.cancel(queued.id)).state == CANCELLED
    cancelled_at = time.monotonic()
    assert (await client.cancel(running.id)).state == CANCELLED
    log = f"job {running.id} run 1: stopped"
    while log not in running_stack.log("trainer-1"):
        assert time.monotonic() - cancelled_at < 5, "the trainer did not stop"
        await asyncio.sleep(0.1)

    # The trainer is free again and takes the next job, never the cancelled one.
    after = (await client.submit(mlp(seed=1005, batch_size=256))).job
    await wait_for(client, after.id, SUCCEEDED, timeout=120)
    assert "started" not in kinds(await history(client, queued.id))
    assert (await client.get(running.id)).state == CANCELLED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.cancel(running.id)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # A cancelled configuration may be submitted again, and runs again.
    again = await client.submit(mlp(seed=1004))
    assert not again.deduplicated
    assert again.job.id == queued.id
    assert again.job.run == 2
    done = await wait_for(client, queued.id, SUCCEEDED, timeout=120)
    assert done.result.test_accuracy > 0.9


async def test_listing_my_jobs(client: TunerClient, running_stack: RunningStack) -> None:
    async with TunerClient(running_stack.address, f"lister{os.getpid()}") as lister:
        ids = [(await lister.submit(mlp(seed=1100 + i, epochs=100))).job.id for i in range(3)]
        page = await lister.list(page_size=2)
        rest = await lister.list(page_size=2, page_token=page.next_page_token)
        assert [j.id for j in page.jobs] + [j.id for j in rest.jobs] == ids[::-1]
        assert not rest.next_page_token
        assert [j.id for j in (await lister.list([SUCCEEDED])).jobs] == []
        for job_id in ids:
            await lister.cancel(job_id)
    mine = [j.id for j in (await client.list(page_size=100)).jobs]
    assert not set(ids) & set(mine)


def test_the_cli_submits_waits_and_prints_json(running_stack: RunningStack) -> None:
    env = dict(os.environ, TUNER_SERVER=running_stack.address, TUNER_USER="cli")
    args = [
        "submit",
        "--epochs",
        "1",
        "--lr",
        "0.002",
        "--batch-size",
        "128",
        "--model",
        "mlp",
        "--seed",
        "1006",
        "--wait",
        "--json",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "tuner.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["state"] == "JOB_STATE_SUCCEEDED"
    assert job["result"]["test_accuracy"] >= 0.95
    assert job["owner"] == "cli"

    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "tuner.cli",
            "submit",
            "--epochs",
            "0",
            "--lr",
            "0.1",
            "--batch-size",
            "8",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "tuner: INVALID_ARGUMENT: hyperparameters.epochs: must be between 1 and 100, got 0"
    )
