"""The pipelined put: what nats-py's own put stores, read back by nats-py, nothing left over."""

from __future__ import annotations

import os
import uuid

import pytest
from nats.js.api import ObjectMeta, ObjectMetaOptions, ObjectStoreConfig
from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore

from tests.support.servers import Nats
from trainer import objects

CHUNK = 64 * 1024


async def bucket(nats: Nats, max_bytes: int = 0) -> tuple[str, ObjectStore]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    config = ObjectStoreConfig(bucket=name, max_bytes=max_bytes or -1)
    return name, await nats.js.create_object_store(name, config=config)


async def stored_messages(nats: Nats, name: str) -> int:
    return (await nats.js.stream_info(f"OBJ_{name}")).state.messages


@pytest.mark.parametrize("size", [0, 1, CHUNK, 5 * CHUNK + 123])
async def test_a_put_reads_back_and_describes_itself_as_nats_pys_own(nats: Nats, size: int) -> None:
    name, store = await bucket(nats)
    data = os.urandom(size)
    await objects.put(nats.nc, nats.js, store, name, "mine", data, CHUNK, description="final")
    meta = ObjectMeta(
        name="theirs", description="final", options=ObjectMetaOptions(max_chunk_size=CHUNK)
    )
    await store.put("theirs", data, meta=meta)

    got = await store.get("mine")  # nats-py checks the digest as it reads
    assert got.data == data
    mine, theirs = got.info, await store.get_info("theirs")
    same = ("size", "chunks", "digest", "description", "bucket", "deleted")
    assert {f: getattr(mine, f) for f in same} == {f: getattr(theirs, f) for f in same}
    assert mine.options is not None and mine.options.max_chunk_size == CHUNK


async def test_a_put_over_an_object_leaves_only_the_new_chunks(nats: Nats) -> None:
    name, store = await bucket(nats)
    await objects.put(nats.nc, nats.js, store, name, "model", os.urandom(3 * CHUNK), CHUNK)
    newer = os.urandom(2 * CHUNK)
    await objects.put(nats.nc, nats.js, store, name, "model", newer, CHUNK)

    assert (await store.get("model")).data == newer
    assert await stored_messages(nats, name) == 2 + 1  # its chunks and its metadata


async def test_a_refused_put_stores_nothing_and_takes_its_chunks_back(nats: Nats) -> None:
    name, store = await bucket(nats, max_bytes=4 * CHUNK)
    with pytest.raises(Exception, match="maximum bytes exceeded"):
        await objects.put(nats.nc, nats.js, store, name, "big", os.urandom(8 * CHUNK), CHUNK)

    with pytest.raises(NotFoundError):
        await store.get_info("big")
    assert await stored_messages(nats, name) == 0
    small = os.urandom(CHUNK)
    await objects.put(nats.nc, nats.js, store, name, "small", small, CHUNK)  # the bucket works on
    assert (await store.get("small")).data == small
