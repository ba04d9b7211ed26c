"""A test's NATS: the connection with its JetStream context, fresh streams, a listener."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ServerError

from tuner.core import streams


@dataclass
class Nats:
    """One connection: core NATS for plain subjects, JetStream for the streams."""

    nc: Client
    js: JetStreamContext


async def fresh_streams(js: JetStreamContext, policy: streams.QueuePolicy) -> None:
    """The tuner streams and consumers, empty: deleting a stream also forgets its message ids."""
    for stream in (streams.JOBS_STREAM, streams.EVENTS_STREAM, streams.ADVISORIES_STREAM):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
    # nats-server may still be removing a deleted stream's files: making it anew
    # at that moment fails with "error creating store for stream" (500).
    for _ in range(50):
        try:
            await streams.ensure_streams(js, policy)
            return
        except ServerError:
            await asyncio.sleep(0.1)
    await streams.ensure_streams(js, policy)


@contextlib.asynccontextmanager
async def listening(nc: Client, subject: str) -> AsyncIterator[asyncio.Queue[Msg]]:
    """Every core NATS message on `subject` while inside, in a queue."""
    heard: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_message(msg: Msg) -> None:
        await heard.put(msg)

    sub = await nc.subscribe(subject, cb=on_message)
    try:
        yield heard
    finally:
        await sub.unsubscribe()
