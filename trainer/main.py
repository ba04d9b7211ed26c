"""Wiring: NATS, the data cache and the worker loop, with one shutdown sequence."""

from __future__ import annotations

import asyncio
import logging
import signal

from trainer.config import Config
from trainer.worker import Worker
from tuner import streams

log = logging.getLogger(__name__)


async def main(config: Config) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    nc = await streams.connect(config.nats_url, name=f"tuner-trainer {config.name}")
    js = nc.jetstream()
    await streams.ensure_streams(js, config.queue)
    worker = Worker(config, nc, js)
    await worker.run(stopping)
    await nc.drain()
    log.info("trainer %s stopped", config.name)
