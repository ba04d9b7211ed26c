"""The one loop over a durable pull consumer, for the scheduler's recorders and the trainers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from tuner.core.retry import Backoff

log = logging.getLogger(__name__)

Handler = Callable[[Msg], Awaitable[None]]


async def consume(
    js: JetStreamContext,
    stream: str,
    durable: str,
    handle: Handler,
    stopping: asyncio.Event,
    *,
    batch: int = 100,
    acks: bool = True,
    transient: tuple[type[BaseException], ...] = (),
) -> None:
    """Until `stopping`: fetch up to `batch` messages and hand them to `handle` in order.

    With `acks`, a message is acked once `handle` returns; otherwise `handle` settles it.
    When `handle` raises, that message and the rest of the batch go back for redelivery
    and the loop backs off: an error of a `transient` kind (an outage) is logged in a
    line, any other with its traceback. An empty fetch is idle, not an error.
    """
    backoff = Backoff()
    sub: JetStreamContext.PullSubscription | None = None
    try:
        while not stopping.is_set():
            try:
                if sub is None:
                    sub = await js.pull_subscribe_bind(durable=durable, stream=stream)
                msgs = await sub.fetch(batch, timeout=1)
            except TimeoutError:  # nats-py raises its own or asyncio's
                continue
            except Exception as error:  # a reconnecting client raises several kinds
                log.warning("fetching from %s failed: %r", stream, error)
                await backoff.wait(stopping)
                continue
            for i, msg in enumerate(msgs):
                try:
                    await handle(msg)
                    if acks:
                        await msg.ack()
                except Exception as error:
                    if isinstance(error, transient):
                        log.warning("%s: will redeliver after %r", stream, error)
                    else:
                        log.exception("%s: handling a message failed, will redeliver", stream)
                    await _redeliver(msgs[i:])
                    await backoff.wait(stopping)
                    break
            else:
                backoff.reset()
    finally:
        if sub is not None:
            await asyncio.shield(_unsubscribe(sub))


async def _redeliver(msgs: list[Msg]) -> None:
    for msg in msgs:
        try:
            await msg.nak(delay=1)
        except Exception as error:  # NATS down: the ack wait redelivers them all the same
            log.warning("could not hand a message back: %r", error)
            return


async def _unsubscribe(sub: JetStreamContext.PullSubscription) -> None:
    try:
        await sub.unsubscribe()
    except Exception as error:
        log.warning("unsubscribing failed: %r", error)
