"""`tuner model get` as a process, over real gRPC to the scheduler's TunerService in process:
the file it writes, and the one line and exit status of each way it cannot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from scheduler.models import CHUNK_BYTES
from scheduler.service import Context, TunerService
from store.jobs import JobStore
from tests.support.hyperparameters import mlp
from tests.support.models import (
    Ran,
    fresh_bucket,
    model_bytes,
    serving,
    stored_job,
    tuner_cli,
)
from tests.support.servers import Nats
from tuner.core import states, streams
from tuner.v1 import tuner_service_pb2

DATA = model_bytes(2 * CHUNK_BYTES + 123)


class WrongDigest(TunerService):
    """Announces another SHA-256 than the bytes it sends."""

    async def GetModel(
        self, request: tuner_service_pb2.GetModelRequest, context: Context
    ) -> AsyncIterator[tuner_service_pb2.GetModelResponse]:
        async for response in super().GetModel(request, context):
            if response.HasField("header"):
                response.header.sha256 = "0" * 64
            yield response


class DropsMidway(TunerService):
    """Sends the header and one chunk, then fails, as a scheduler that lost NATS would."""

    async def GetModel(
        self, request: tuner_service_pb2.GetModelRequest, context: Context
    ) -> AsyncIterator[tuner_service_pb2.GetModelResponse]:
        sent = 0
        async for response in super().GetModel(request, context):
            yield response
            sent += 1
            if sent == 2:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "NATS unavailable, try again")


async def get(address: str, cwd: Path, *args: str) -> Ran:
    return await tuner_cli("model", "get", "--server", address, "--user", "bob", *args, cwd=cwd)


@pytest.fixture
async def job_id(store: JobStore, nats: Nats) -> str:
    doc = await stored_job(store, mlp(9501), owner="alice")
    bucket = await fresh_bucket(nats.js)
    await bucket.put(streams.model_object(doc["_id"], "state-dict"), DATA)
    await bucket.put(streams.model_object(doc["_id"], "exported"), b"program")
    return str(doc["_id"])


async def test_the_model_is_saved_under_its_default_name_or_where_asked(
    store: JobStore, nats: Nats, job_id: str, tmp_path: Path
) -> None:
    (tmp_path / "models").mkdir()
    async with serving(store, nats) as address:
        default = await get(address, tmp_path, job_id)
        exported = await get(address, tmp_path, job_id, "--format", "exported")
        into_folder = await get(address, tmp_path, job_id, "-o", "models")
        named = await get(address, tmp_path, job_id, "-o", "models/best.pt")

    for ran in (default, exported, into_folder, named):
        assert (ran.returncode, ran.stderr) == (0, "")
    assert default.stdout == (
        f"saved the state-dict model of job {job_id} to {job_id}.pt ({len(DATA)} bytes)\n"
    )
    assert (tmp_path / f"{job_id}.pt").read_bytes() == DATA
    assert (tmp_path / f"{job_id}.pt2").read_bytes() == b"program"
    assert (tmp_path / "models" / f"{job_id}.pt").read_bytes() == DATA
    assert (tmp_path / "models" / "best.pt").read_bytes() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{job_id}.pt", f"{job_id}.pt2", "models"]
    )


async def test_the_servers_refusals_are_one_line_and_exit_1(
    store: JobStore, nats: Nats, job_id: str, tmp_path: Path
) -> None:
    running = await stored_job(store, mlp(9502), states.RUNNING)
    unknown = "0" * 32
    async with serving(store, nats) as address:
        not_found = await get(address, tmp_path, unknown)
        not_yet = await get(address, tmp_path, running["_id"])

    assert (not_found.returncode, not_found.stdout) == (1, "")
    assert not_found.stderr == f"tuner: NOT_FOUND: job_id: no job {unknown} exists\n"
    assert not_yet.returncode == 1
    assert not_yet.stderr == (
        f"tuner: FAILED_PRECONDITION: job_id: job {running['_id']} is RUNNING: "
        "it has no model until it succeeds\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("service", "line"),
    [
        (WrongDigest, "the model of job {job} does not match its SHA-256: not saved"),
        (DropsMidway, ": NATS unavailable, try again"),
    ],
    ids=["wrong-digest", "drops-midway"],
)
async def test_a_download_that_goes_wrong_leaves_no_file(
    store: JobStore,
    nats: Nats,
    job_id: str,
    tmp_path: Path,
    service: type[TunerService],
    line: str,
) -> None:
    (tmp_path / "best.pt").write_bytes(b"the older model")
    async with serving(store, nats, service=service) as address:
        ran = await get(address, tmp_path, job_id)
        over = await get(address, tmp_path, job_id, "-o", "best.pt")

    for result in (ran, over):
        assert result.returncode == 1
        stderr = result.stderr.splitlines()
        assert len(stderr) == 1 and stderr[0].endswith(line.format(job=job_id)), stderr
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"], "no partial file, no temporary"
    assert (tmp_path / "best.pt").read_bytes() == b"the older model"


async def test_an_unwritable_path_is_one_line(
    store: JobStore, nats: Nats, job_id: str, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    async with serving(store, nats) as address:
        ran = await get(address, tmp_path, job_id, "-o", "a-file/model.pt")
        missing = await get(address, tmp_path, job_id, "-o", "no/such/folder/model.pt")

    assert (ran.returncode, ran.stdout) == (1, "")
    assert ran.stderr == "tuner: cannot write a-file/model.pt: Not a directory\n"
    assert missing.stderr == (
        "tuner: cannot write no/such/folder/model.pt: No such file or directory\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


async def test_help_says_what_each_format_is(tmp_path: Path) -> None:
    ran = await tuner_cli("model", "get", "--help", cwd=tmp_path)
    assert ran.returncode == 0
    assert "state-dict  the weights (JOB_ID.pt)" in ran.stdout
    assert "exported    a torch.export program (JOB_ID.pt2)" in ran.stdout
