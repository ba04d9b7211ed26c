"""Wiring: NATS, the announcements, the warm-up and the worker loop, with one shutdown sequence."""

from __future__ import annotations

import asyncio
import logging
import signal

import torch

from trainer.announce import Announcer
from trainer.config import Config
from trainer.metrics import Metrics
from trainer.worker import Worker
from tuner.core import metrics as exporter
from tuner.core import streams
from tuner.core.retry import Backoff
from tuner.core.supervise import Supervisor, until_either

log = logging.getLogger(__name__)

GRACE_SECONDS = 10.0


async def main(config: Config) -> int:
    """Train until SIGINT/SIGTERM (0) or until the worker loop cannot resume (1)."""
    metrics = Metrics()
    # First of all: a port in use ends the start with one line (ConfigError).
    stop_metrics = (
        exporter.serve(metrics.registry, config.metrics_port) if config.metrics_port else None
    )
    if config.torch_threads:
        # Trainers sharing a host must split its cores: oversubscribed, torch slows ~20x.
        torch.set_num_threads(config.torch_threads)
    # Before any thread starts, so that torch's thread pools inherit it too (see training.py).
    torch.set_flush_denormal(True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    name = f"tuner-trainer {config.name}"
    nc = await streams.connect_when_up(config.nats_url, name, config.nats_ca_file, stopping)
    if nc is None:
        return 0
    js = nc.jetstream()
    backoff = Backoff(first=0.5, cap=5.0)
    while not stopping.is_set():
        try:
            await streams.ensure_streams(js, config.queue)
            break
        except Exception as error:  # NATS up but JetStream not ready (a restart, an election)
            log.warning("waiting for JetStream: %r", error)
            await backoff.wait(stopping)
    worker = Worker(config, nc, js, metrics)
    await worker.listen(stopping)
    supervisor = Supervisor(stopping)
    announcer = Announcer(config, nc, worker)
    # Announced from the start (not ready); the job loop warms up first, in a thread.
    supervisor.start("the announcements", lambda: announcer.run(stopping))
    supervisor.start("the job loop", worker.run)
    supervisor.start("the hand-back on stop", worker.hand_back)
    await until_either(stopping, supervisor.dead)
    code = 1 if supervisor.dead.is_set() else 0
    if code:
        log.critical("trainer cannot go on (%s): stopping", supervisor.reason)
    stopping.set()
    await supervisor.stop(GRACE_SECONDS)
    await announcer.goodbye()
    await streams.close(nc)
    if stop_metrics:
        stop_metrics()
    log.info("trainer %s stopped", config.name)
    return code
