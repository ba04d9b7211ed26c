"""Saving a streamed model: kept only whole and matching its header, never left half-written."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tuner.models import ModelError, save, target
from tuner.v1 import tuner_service_pb2

Response = tuner_service_pb2.GetModelResponse
JOB = "ab" * 16
DATA = b"0123456789" * 10_000


def header(data: bytes = DATA, sha256: str = "") -> Response:
    return Response(
        header=tuner_service_pb2.ModelHeader(
            job_id=JOB, size=len(data), sha256=sha256 or hashlib.sha256(data).hexdigest()
        )
    )


def chunks(data: bytes = DATA, size: int = 65536) -> list[Response]:
    return [Response(chunk=data[i : i + size]) for i in range(0, len(data), size)]


class Broken(Exception):
    pass


async def stream(
    responses: list[Response], fail_after: int | None = None
) -> AsyncIterator[Response]:
    for index, response in enumerate(responses):
        if index == fail_after:
            raise Broken("the connection dropped")
        yield response


def left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_a_whole_model_is_saved_and_its_header_returned(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    got = await save(stream([header(), *chunks()]), path)
    assert got.job_id == JOB
    assert path.read_bytes() == DATA
    assert left_in(tmp_path) == ["model.pt"]


@pytest.mark.parametrize(
    ("responses", "message"),
    [
        pytest.param(
            [header(sha256="0" * 64), *chunks()],
            f"the model of job {JOB} does not match its SHA-256: not saved",
            id="wrong-digest",
        ),
        pytest.param(
            [header(), *chunks()[:-1]],
            f"the model of job {JOB} ended after 65536 of 100000 bytes",
            id="short",
        ),
        pytest.param(
            [header(DATA[:10]), *chunks()],
            f"the model of job {JOB} is longer than announced",
            id="long",
        ),
        pytest.param(
            [*chunks(), header()],
            "the server sent the model before its header",
            id="no-header-first",
        ),
        pytest.param([header(), header()], "the server sent a second header", id="two-headers"),
        pytest.param([], "the server sent no model", id="empty"),
    ],
)
async def test_a_model_that_is_not_what_was_announced_leaves_nothing(
    tmp_path: Path, responses: list[Response], message: str
) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"an older file")
    with pytest.raises(ModelError) as raised:
        await save(stream(responses), path)
    assert str(raised.value) == message
    assert left_in(tmp_path) == ["model.pt"], "no temporary file left"
    assert path.read_bytes() == b"an older file", "what was there stays"


async def test_a_stream_that_breaks_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(Broken):
        await save(stream([header(), *chunks()], fail_after=2), tmp_path / "model.pt")
    assert left_in(tmp_path) == []


async def test_a_path_that_cannot_be_written_is_said_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    path = tmp_path / "file" / "model.pt"
    with pytest.raises(ModelError) as raised:
        await save(stream([header(), *chunks()]), path)
    assert str(raised.value) == f"cannot write {path}: Not a directory"
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ModelError) as raised:
        await save(stream([header(), *chunks()]), folder)  # a folder cannot be replaced
    assert str(raised.value).startswith(f"cannot write {folder}: ")
    assert left_in(folder) == []


async def test_nothing_touches_the_disk_before_the_header(tmp_path: Path) -> None:
    with pytest.raises(Broken):
        await save(stream([header()], fail_after=0), tmp_path / "model.pt")
    assert left_in(tmp_path) == []


def test_the_default_file_is_named_for_the_job_and_format(tmp_path: Path) -> None:
    assert target(None, JOB, "state-dict") == Path(f"{JOB}.pt")
    assert target("", JOB, "exported") == Path(f"{JOB}.pt2")
    assert target(tmp_path, JOB, "exported") == tmp_path / f"{JOB}.pt2"
    assert target(tmp_path / "m.bin", JOB, "state-dict") == tmp_path / "m.bin"
