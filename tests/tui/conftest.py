"""Fixtures for the TUI tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.dashboard import ME
from tuner.client import TunerClient


@pytest.fixture
def offline_client() -> Iterator[TunerClient]:
    """A client of an address where nothing listens, for apps that make no calls.

    grpc.aio binds a channel to the current event loop when it is made, and a sync test
    has none, so the channel gets one of its own, which it never uses.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield TunerClient("127.0.0.1:9", ME)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
async def client() -> AsyncIterator[TunerClient]:
    """Of an address where nothing listens: with live=False the app makes no call."""
    async with TunerClient("127.0.0.1:9", ME) as made:
        yield made
