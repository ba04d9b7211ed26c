"""Reading a SUCCEEDED job's final model from the object store, for GetModel (bytes only:
the scheduler never imports torch)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import DigestMismatchError, NotFoundError

from scheduler.retention import RetentionPolicy
from store.documents import Document
from tuner.core import states, streams
from tuner.v1 import job_pb2

CHUNK_BYTES = 64 * 1024
FORMATS = {
    job_pb2.MODEL_FORMAT_STATE_DICT: "state-dict",
    job_pb2.MODEL_FORMAT_EXPORTED: "exported",
}
DIGEST_PREFIX = "SHA-256="


class NoModel(Exception):
    """The job has no model to give; the message says why."""


class CorruptModel(Exception):
    """The stored object does not match its own digest."""


@dataclass(frozen=True)
class Model:
    data: bytes
    sha256: str  # hex

    def chunks(self) -> list[bytes]:
        view = memoryview(self.data)
        return [bytes(view[i : i + CHUNK_BYTES]) for i in range(0, len(view), CHUNK_BYTES)]


def why_no_model(doc: Document, policy: RetentionPolicy) -> str | None:
    """Why the job has no model (it has not succeeded, or its model expired); None if it has."""
    job_id, state = doc["_id"], states.of(doc)
    if state in states.ACTIVE:
        return f"job_id: job {job_id} is {doc['state']}: it has no model until it succeeds"
    if state != states.SUCCEEDED:
        return f"job_id: job {job_id} is {doc['state']}: only a SUCCEEDED job has a model"
    if doc.get("model_deleted"):
        return f"job_id: the model of job {job_id} has expired (kept: {policy.describe()})"
    return None


async def read_model(
    js: JetStreamContext, job_id: str, format_name: str, timeout: float = 30.0
) -> Model:
    """The whole object, in memory: nats-py's ObjectStore.get reads it so and checks its
    SHA-256 (the models here are a few MB). Raises NoModel, CorruptModel, or a NATS outage
    (TimeoutError when NATS stalls)."""
    try:
        bucket = await js.object_store(streams.CHECKPOINTS_BUCKET)
        result = await asyncio.wait_for(
            bucket.get(streams.model_object(job_id, format_name)), timeout
        )
    except NotFoundError as error:  # no bucket yet, or no such object
        raise NoModel(job_id) from error
    except DigestMismatchError as error:
        raise CorruptModel(job_id) from error
    data = result.data or b""
    return Model(data, _hex_digest(result.info.digest or "") or hashlib.sha256(data).hexdigest())


def _hex_digest(digest: str) -> str:
    """The object store's "SHA-256=<base64url>" as hex, which get() just checked; "" if other."""
    if not digest.upper().startswith(DIGEST_PREFIX):
        return ""
    try:
        raw = base64.urlsafe_b64decode(digest[len(DIGEST_PREFIX) :])
    except (binascii.Error, ValueError):
        return ""
    return raw.hex() if len(raw) == hashlib.sha256().digest_size else ""
