"""The scheduler's durable pull consumers: fetch, handle in order, ack once recorded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)


async def consume(
    js: JetStreamContext,
    stream: str,
    durable: str,
    handle: Callable[[Msg], Awaitable[None]],
    stopping: asyncio.Event,
    batch: int = 100,
) -> None:
    """Until `stopping`: while the database is down, messages go back for redelivery."""
    sub = await js.pull_subscribe_bind(durable=durable, stream=stream)
    try:
        while not stopping.is_set():
            try:
                msgs = await sub.fetch(batch, timeout=1)
            except TimeoutError:  # nats-py raises its own or asyncio's
                continue
            except Exception as error:  # a reconnecting client raises several kinds
                log.warning("fetching from %s failed: %r", stream, error)
                await asyncio.sleep(1)
                continue
            for i, msg in enumerate(msgs):
                try:
                    await handle(msg)
                except PyMongoError as error:
                    log.warning("database unavailable, %s will redeliver: %s", stream, error)
                    for rest in msgs[i:]:
                        await rest.nak(delay=1)
                    await asyncio.sleep(1)
                    break
                await msg.ack()
    finally:
        await sub.unsubscribe()
