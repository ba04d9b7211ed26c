"""Per-test fixtures on the session's servers: a database of its own, streams made anew."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from store.jobs import JobStore
from store.sweeps import SweepStore
from tests.support.servers import Nats, fresh_streams
from tuner.core import streams


@pytest.fixture
async def store(mongo_uri: str) -> AsyncIterator[JobStore]:
    """A JobStore on a database of its own."""
    s = JobStore.connect(mongo_uri, f"test_{uuid.uuid4().hex[:12]}")
    await s.ensure_indexes()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def sweeps(store: JobStore) -> SweepStore:
    """A SweepStore on the store's database."""
    s = SweepStore(store.client, store.jobs.database.name)
    await s.ensure_indexes()
    return s


@pytest.fixture
async def nats(nats_url: str) -> AsyncIterator[Nats]:
    """A connection to the session's nats-server, the tuner streams empty for this test."""
    nc = await streams.connect(nats_url, "unit-test")
    try:
        js = nc.jetstream()
        await fresh_streams(js, streams.QueuePolicy())
        yield Nats(nc, js)
    finally:
        await nc.close()
