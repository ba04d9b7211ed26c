"""An object store put whose chunks are in flight together, in the object store's own format.

nats-py's ObjectStore.put waits for each chunk's acknowledgement before it sends the next:
a round trip a chunk, most of a put's time. Here the chunks go out one after another on the
connection (in order, as its reader needs them) and their acknowledgements are awaited
together; then, as there, the metadata goes last (an interrupted put stores nothing under
the name) and an earlier object's chunks go. nats-py reads what this writes, digest checked.

The acknowledgements come to an inbox of the put's own: nats-py's publish_async never
settles the future of a publish the stream refuses (its reply handler raises instead).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError
from nats.js.kv import MSG_ROLLUP_SUBJECT
from nats.js.object_store import (
    OBJ_CHUNKS_PRE_TEMPLATE,
    OBJ_DIGEST_TEMPLATE,
    OBJ_META_PRE_TEMPLATE,
    OBJ_STREAM_TEMPLATE,
    ObjectStore,
)
from nats.nuid import NUID

ROLLUP: dict[str, Any] = {api.Header.ROLLUP: MSG_ROLLUP_SUBJECT}  # replaces its earlier

_nuid = NUID()


async def put(
    nc: Client,
    js: JetStreamContext,
    store: ObjectStore,
    bucket: str,
    name: str,
    data: bytes,
    chunk_bytes: int,
    description: str | None = None,
) -> None:
    """Store `data` as object `name` of `bucket` (whose ObjectStore `store` is)."""
    try:
        earlier: api.ObjectInfo | None = await store.get_info(name)
    except NotFoundError:
        earlier = None
    stream = OBJ_STREAM_TEMPLATE.format(bucket=bucket)
    nuid = _nuid.next().decode()
    chunks = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=nuid)
    digest = hashlib.sha256()
    count = 0
    inbox = nc.new_inbox()
    replies = await nc.subscribe(f"{inbox}.*")
    try:
        for start in range(0, len(data), chunk_bytes):
            chunk = data[start : start + chunk_bytes]
            digest.update(chunk)
            await nc.publish(chunks, chunk, reply=f"{inbox}.{count}")
            count += 1
        refused: Exception | None = None
        for _ in range(count):
            try:
                _acknowledged(await replies.next_msg(timeout=None))
            except Exception as error:
                # The chunks after it are still coming: a purge now would make room for them.
                refused = refused or error
        if refused is not None:
            raise refused
    except BaseException as error:
        if not isinstance(error, asyncio.CancelledError):
            try:
                await js.purge_stream(stream, subject=chunks)
            except Exception as purge:
                error.add_note(f"its chunks stay in {stream}: {purge!r}")
        raise
    finally:
        await replies.unsubscribe()
    info = api.ObjectInfo(
        name=name,
        bucket=bucket,
        nuid=nuid,
        size=len(data),
        mtime=datetime.now(UTC).isoformat(),
        chunks=count,
        digest=OBJ_DIGEST_TEMPLATE.format(digest=_b64(digest.digest())),
        description=description,
        options=api.ObjectMetaOptions(max_chunk_size=chunk_bytes),
    )
    meta = OBJ_META_PRE_TEMPLATE.format(bucket=bucket, obj=_b64(name.encode()))
    # No purge if this fails: an unanswered publish may still be stored, and its chunks with it.
    await js.publish(meta, json.dumps(info.as_dict()).encode(), headers=ROLLUP)
    if earlier is not None and not earlier.deleted:
        old = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=earlier.nuid)
        await js.purge_stream(stream, subject=old)


def _acknowledged(reply: Msg) -> None:
    """Raise what the stream said if `reply` is not an acknowledgement."""
    if reply.headers and reply.headers.get(api.Header.STATUS) == "503":
        raise NoStreamResponseError
    answer = json.loads(reply.data)
    if "error" in answer:
        APIError.from_error(answer["error"])  # raises the error's own class
        raise APIError(**answer["error"])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()
