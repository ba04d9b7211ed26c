"""The live set of trainers, from their announcements on core NATS: soft state, in memory."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from google.protobuf.message import DecodeError
from nats.aio.client import Client
from nats.aio.msg import Msg

from tuner.core import streams
from tuner.v1 import trainer_pb2

log = logging.getLogger(__name__)


class Trainers:
    """Every trainer heard within `silence` seconds; one that says goodbye is dropped at once."""

    def __init__(
        self,
        silence: float = streams.TRAINER_SILENCE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._silence = silence
        self._clock = clock
        self._seen: dict[str, tuple[float, trainer_pb2.TrainerStatus]] = {}

    async def subscribe(self, nc: Client) -> None:
        """Hear every trainer; the client subscribes again by itself after a reconnect."""
        await nc.subscribe(streams.TRAINERS_SUBJECTS, cb=self._on_message)

    async def _on_message(self, msg: Msg) -> None:
        self.heard(msg.subject, msg.data)

    def heard(self, subject: str, data: bytes) -> None:
        """Take one announcement; one that does not decode is dropped with a line in the log."""
        try:
            status = trainer_pb2.TrainerStatus.FromString(data)
        except DecodeError:
            log.warning("dropped a malformed trainer announcement on %s", subject)
            return
        if not status.name:
            log.warning("dropped a trainer announcement without a name on %s", subject)
            return
        if status.goodbye:
            if self._seen.pop(status.name, None) is not None:
                log.info("trainer %s said goodbye", status.name)
            return
        if status.name not in self._seen:
            log.info("trainer %s on %s (%s) is here", status.name, status.host, status.device)
        status.receive_time.GetCurrentTime()
        self._seen[status.name] = (self._clock(), status)

    def live(self) -> list[trainer_pb2.TrainerStatus]:
        """The trainers heard lately, by name; the silent ones are forgotten."""
        now = self._clock()
        for name, (seen, _) in list(self._seen.items()):
            if now - seen > self._silence:
                del self._seen[name]
                log.info("trainer %s is silent for %.0f s: taken for gone", name, now - seen)
        return [status for _, (_, status) in sorted(self._seen.items())]

    def count(self) -> int:
        return len(self.live())
