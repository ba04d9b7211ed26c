"""The trainer's announcements of itself on core NATS: who it is, what it trains, a goodbye."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import torch
from nats.aio.client import Client

from trainer.config import Config
from trainer.worker import Worker
from tuner.core import streams
from tuner.v1 import trainer_pb2

log = logging.getLogger(__name__)


class Announcer:
    """Publishes the trainer's status every 2 s, and at once when it gets ready or changes job."""

    def __init__(
        self,
        config: Config,
        nc: Client,
        worker: Worker,
        interval: float = streams.TRAINER_ANNOUNCE_SECONDS,
    ) -> None:
        self._config = config
        self._nc = nc
        self._worker = worker
        self._interval = interval
        self._subject = streams.trainer_subject(config.name)
        self._host = socket.gethostname()
        self._started = trainer_pb2.TrainerStatus().start_time
        self._started.GetCurrentTime()
        self._failing = False

    def status(self, goodbye: bool = False) -> trainer_pb2.TrainerStatus:
        status = trainer_pb2.TrainerStatus(
            name=self._config.name,
            host=self._host,
            device=self._worker.device,
            torch_threads=torch.get_num_threads(),
            jobs_done=self._worker.jobs_done,
            goodbye=goodbye,
            ready=self._worker.ready,
        )
        status.start_time.CopyFrom(self._started)
        if (current := self._worker.current) is not None:
            status.job_id = current.job_id
            status.run = current.run
            if current.progress is not None:
                status.progress.CopyFrom(current.progress)
        status.send_time.GetCurrentTime()
        return status

    async def publish(self, goodbye: bool = False) -> None:
        """One announcement; NATS being away costs a log line, never the trainer."""
        try:
            await self._nc.publish(self._subject, self.status(goodbye).SerializeToString())
            if self._failing:
                log.info("announcing trainer %s again", self._config.name)
            self._failing = False
        except Exception as error:
            if not self._failing:
                log.warning("trainer %s not announced: %r", self._config.name, error)
            self._failing = True

    async def run(self, stopping: asyncio.Event) -> None:
        """Until `stopping`: announce every `interval`, and at once when the job changes."""
        changed = self._worker.changed
        while not stopping.is_set():
            changed.clear()
            await self.publish()
            waiters = [asyncio.create_task(changed.wait()), asyncio.create_task(stopping.wait())]
            try:
                await asyncio.wait(waiters, timeout=self._interval, return_when="FIRST_COMPLETED")
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def goodbye(self, timeout: float = 1.0) -> None:
        """The last announcement: the scheduler forgets this trainer at once."""
        await self.publish(goodbye=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._nc.flush(), timeout)
