"""GetModel over real gRPC (the scheduler's interceptors, a real JobStore and nats-server): a
header, then the object in 64 KiB chunks; or why there is no model."""

from __future__ import annotations

import hashlib

import grpc
import pytest

from scheduler.models import CHUNK_BYTES
from scheduler.retention import RetentionPolicy
from store.jobs import JobStore
from tests.support.hyperparameters import mlp
from tests.support.models import (
    fresh_bucket,
    model_bytes,
    no_bucket,
    serving,
    stored_job,
)
from tests.support.servers import Nats
from tuner.client import TunerClient
from tuner.core import states, streams
from tuner.v1 import job_pb2, tuner_service_pb2

STATE_DICT = job_pb2.MODEL_FORMAT_STATE_DICT
EXPORTED = job_pb2.MODEL_FORMAT_EXPORTED


async def download(
    address: str, job_id: str, model_format: int = 0
) -> list[tuner_service_pb2.GetModelResponse]:
    async with TunerClient(address, "bob") as client:
        return [response async for response in client.model(job_id, model_format)]


async def refusal(address: str, job_id: str, model_format: int = 0) -> tuple[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await download(address, job_id, model_format)
    return raised.value.code().name, raised.value.details() or ""


async def test_a_model_comes_as_a_header_then_64_kib_chunks(store: JobStore, nats: Nats) -> None:
    doc = await stored_job(store, mlp(7001), owner="alice")
    bucket = await fresh_bucket(nats.js)
    data = model_bytes(3 * CHUNK_BYTES + 1000)
    await bucket.put(streams.model_object(doc["_id"], "state-dict"), data)
    await bucket.put(streams.model_object(doc["_id"], "exported"), b"exported program")

    async with serving(store, nats) as address:
        responses = await download(address, doc["_id"])  # bob may download alice's model
        exported = await download(address, doc["_id"], EXPORTED)

    header, *chunks = responses
    assert header.WhichOneof("kind") == "header"
    assert header.header == tuner_service_pb2.ModelHeader(
        job_id=doc["_id"],
        format=STATE_DICT,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    assert [len(c.chunk) for c in chunks] == [CHUNK_BYTES] * 3 + [1000]
    assert b"".join(c.chunk for c in chunks) == data
    assert exported[0].header.format == EXPORTED
    assert exported[0].header.sha256 == hashlib.sha256(b"exported program").hexdigest()
    assert [r.chunk for r in exported[1:]] == [b"exported program"]


async def test_an_empty_object_is_a_header_alone(store: JobStore, nats: Nats) -> None:
    doc = await stored_job(store, mlp(7002))
    bucket = await fresh_bucket(nats.js)
    await bucket.put(streams.model_object(doc["_id"], "state-dict"), b"")
    async with serving(store, nats) as address:
        (header,) = await download(address, doc["_id"])
    assert (header.header.size, header.header.sha256) == (0, hashlib.sha256(b"").hexdigest())


async def test_an_unknown_job_is_not_found_and_a_bad_request_is_invalid(
    store: JobStore, nats: Nats
) -> None:
    doc = await stored_job(store, mlp(7003))
    async with serving(store, nats) as address:
        assert await refusal(address, "0" * 32) == (
            "NOT_FOUND",
            f"job_id: no job {'0' * 32} exists",
        )
        assert await refusal(address, "not-an-id") == (
            "INVALID_ARGUMENT",
            "job_id: must be 32 lowercase hex digits",
        )
        assert await refusal(address, doc["_id"], 7) == (
            "INVALID_ARGUMENT",
            "format: unknown model format 7",
        )


@pytest.mark.parametrize(
    ("state", "why"),
    [
        pytest.param(s, why, id=states.name(s))
        for s, why in [
            (states.QUEUED, "is QUEUED: it has no model until it succeeds"),
            (states.RUNNING, "is RUNNING: it has no model until it succeeds"),
            (states.FAILED, "is FAILED: only a SUCCEEDED job has a model"),
            (states.CANCELLED, "is CANCELLED: only a SUCCEEDED job has a model"),
        ]
    ],
)
async def test_a_job_that_has_not_succeeded_has_no_model(
    store: JobStore, nats: Nats, state: int, why: str
) -> None:
    doc = await stored_job(store, mlp(7010 + state), state)
    await fresh_bucket(nats.js)
    async with serving(store, nats) as address:
        assert await refusal(address, doc["_id"]) == (
            "FAILED_PRECONDITION",
            f"job_id: job {doc['_id']} {why}",
        )


async def test_a_missing_or_expired_model_is_refused_saying_what_is_kept(
    store: JobStore, nats: Nats
) -> None:
    policy = RetentionPolicy(per_user=3, days=2)
    kept = (
        "the top 50 of each dataset's and each dataset and model's leaderboard "
        "and each user's last 3 jobs; "
        "the others for 2 days after they end"
    )
    missing = await stored_job(store, mlp(7020))
    expired = await stored_job(store, mlp(7021))
    await store.set_model_deleted(expired["_id"], expired["end_time"])
    exported_only = await stored_job(store, mlp(7022))
    bucket = await fresh_bucket(nats.js)
    await bucket.put(streams.model_object(exported_only["_id"], "exported"), b"x")

    async with serving(store, nats, policy) as address:
        assert await refusal(address, missing["_id"]) == (
            "FAILED_PRECONDITION",
            f"job_id: the model of job {missing['_id']} is not stored (kept: {kept})",
        )
        assert await refusal(address, expired["_id"]) == (
            "FAILED_PRECONDITION",
            f"job_id: the model of job {expired['_id']} has expired (kept: {kept})",
        )
        assert (await refusal(address, exported_only["_id"], STATE_DICT))[0] == (
            "FAILED_PRECONDITION"
        )
        assert len(await download(address, exported_only["_id"], EXPORTED)) == 2
        # Before any trainer made the bucket, no job has a model.
        await no_bucket(nats.js)
        code, details = await refusal(address, exported_only["_id"], EXPORTED)
    assert (code, details.split(" (")[0]) == (
        "FAILED_PRECONDITION",
        f"job_id: the model of job {exported_only['_id']} is not stored",
    )


async def test_without_nats_a_download_is_unavailable(store: JobStore, nats: Nats) -> None:
    doc = await stored_job(store, mlp(7030))
    await fresh_bucket(nats.js)
    async with serving(store, nats) as address:
        await nats.nc.close()
        code, details = await refusal(address, doc["_id"])
    assert (code, details) == ("UNAVAILABLE", "NATS unavailable, try again")
