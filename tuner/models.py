"""Saving a job's final model to a file: checked against its header, never left half-written.

Shared by `tuner model get` and the dashboard; bytes only, no torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tuner.v1 import job_pb2, tuner_service_pb2


@dataclass(frozen=True)
class Format:
    value: int  # job_pb2.ModelFormat
    suffix: str


FORMATS = {
    "state-dict": Format(job_pb2.MODEL_FORMAT_STATE_DICT, ".pt"),
    "exported": Format(job_pb2.MODEL_FORMAT_EXPORTED, ".pt2"),
}


class ModelError(Exception):
    """A one-line reason the model was not saved."""


def target(output: str | Path | None, job_id: str, format_name: str) -> Path:
    """Where the model goes: `output`, or JOB_ID.pt (.pt2 exported) in `output` if it is a
    folder, or in the current folder without one."""
    name = f"{job_id}{FORMATS[format_name].suffix}"
    if output is None or str(output) == "":
        return Path(name)
    path = Path(output).expanduser()
    return path / name if path.is_dir() else path


async def save(
    responses: AsyncIterator[tuner_service_pb2.GetModelResponse], path: Path
) -> tuner_service_pb2.ModelHeader:
    """Write the streamed model (a header, then chunks) to `path`, and return its header.

    The bytes go to a temporary file beside `path`, renamed over it only once their size and
    SHA-256 are the header's. On any failure (the stream's, a mismatch, the disk's) nothing
    is left: no temporary file, no `path`. Raises ModelError, or the stream's own error.
    Nothing touches the disk before the header: a refused download leaves no trace either.
    """
    partial = Partial(path)
    try:
        header = await _receive(responses, partial)
        partial.keep()
        return header
    finally:
        partial.discard()


async def _receive(
    responses: AsyncIterator[tuner_service_pb2.GetModelResponse], partial: Partial
) -> tuner_service_pb2.ModelHeader:
    header: tuner_service_pb2.ModelHeader | None = None
    digest, size = hashlib.sha256(), 0
    async for response in responses:
        if response.WhichOneof("kind") == "header":
            if header is not None:
                raise ModelError("the server sent a second header")
            header = response.header
            partial.create()
            continue
        if header is None:
            raise ModelError("the server sent the model before its header")
        size += len(response.chunk)
        if size > header.size:
            raise ModelError(f"the model of job {header.job_id} is longer than announced")
        digest.update(response.chunk)
        partial.write(response.chunk)
    if header is None:
        raise ModelError("the server sent no model")
    if size != header.size:
        raise ModelError(
            f"the model of job {header.job_id} ended after {size} of {header.size} bytes"
        )
    if digest.hexdigest() != header.sha256.lower():
        raise ModelError(f"the model of job {header.job_id} does not match its SHA-256: not saved")
    return header


class Partial:
    """The file being written: hidden beside `path`, in its folder (so the rename stays on one
    file system), with the permissions a plain new file gets (0666 less the umask)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._name = path.parent / f".{path.name}.{secrets.token_hex(4)}.part"
        self._fd: int | None = None
        self._created = False

    def create(self) -> None:
        try:
            self._fd = os.open(self._name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as error:
            raise self._cannot_write(error) from None
        self._created = True

    def write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            raise self._cannot_write(error) from None

    def keep(self) -> None:
        """Flush it to disk and rename it to `path`."""
        assert self._fd is not None, "created at the header"
        try:
            os.fsync(self._fd)
            self._close()
            os.replace(self._name, self.path)
        except OSError as error:
            raise self._cannot_write(error) from None
        self._created = False

    def discard(self) -> None:
        """Close and delete it, if it is still there."""
        with contextlib.suppress(OSError):
            self._close()
        if self._created:
            with contextlib.suppress(OSError):
                self._name.unlink()
            self._created = False

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _cannot_write(self, error: OSError) -> ModelError:
        return ModelError(f"cannot write {self.path}: {error.strerror or error}")
