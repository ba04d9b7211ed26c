"""Wiring: NATS, the data cache and the worker loop, with one shutdown sequence."""

from __future__ import annotations

import asyncio
import logging
import signal

import torch

from trainer.config import Config
from trainer.worker import Worker
from tuner.core import streams

log = logging.getLogger(__name__)


async def main(config: Config) -> None:
    if config.torch_threads:
        # Trainers sharing a host must split its cores: oversubscribed, torch slows ~20x.
        torch.set_num_threads(config.torch_threads)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    nc = await streams.connect(
        config.nats_url, name=f"tuner-trainer {config.name}", ca_file=config.nats_ca_file
    )
    js = nc.jetstream()
    await streams.ensure_streams(js, config.queue)
    worker = Worker(config, nc, js)
    await worker.run(stopping)
    await nc.drain()
    log.info("trainer %s stopped", config.name)
