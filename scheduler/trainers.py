"""The live set of trainers, from their announcements on core NATS: soft state, in memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from nats.aio.client import Client
from nats.aio.msg import Msg

from tuner.core import streams
from tuner.v1 import trainer_pb2

log = logging.getLogger(__name__)

APPEARED = trainer_pb2.TRAINER_CHANGE_KIND_APPEARED
CHANGED = trainer_pb2.TRAINER_CHANGE_KIND_CHANGED
LEFT = trainer_pb2.TRAINER_CHANGE_KIND_LEFT
# An announcement that changes only progress (or nothing) is told at most this often.
QUIET_CHANGE_SECONDS = 0.75 * streams.TRAINER_ANNOUNCE_SECONDS
LISTENER_QUEUE = 256
Update = trainer_pb2.TrainerChange | trainer_pb2.TrainerSet


@dataclass
class _Heard:
    seen: float
    status: trainer_pb2.TrainerStatus
    told: float


@dataclass(eq=False)
class _Listener:
    queue: asyncio.Queue[trainer_pb2.TrainerChange]
    # Changes were dropped for it: it gets the whole set again instead.
    behind: bool = False


def _steady(status: trainer_pb2.TrainerStatus) -> bytes:
    """What a change is made of: all but progress and the times of sending and receiving."""
    kept = trainer_pb2.TrainerStatus()
    kept.CopyFrom(status)
    for name in ("progress", "send_time", "receive_time"):
        kept.ClearField(name)
    return kept.SerializeToString(deterministic=True)


class Trainers:
    """Every trainer heard within `silence` seconds; one that says goodbye is dropped at once."""

    def __init__(
        self,
        silence: float = streams.TRAINER_SILENCE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._silence = silence
        self._clock = clock
        self._seen: dict[str, _Heard] = {}
        self._listeners: set[_Listener] = set()

    async def subscribe(self, nc: Client) -> None:
        """Hear every trainer; the client subscribes again by itself after a reconnect."""
        await nc.subscribe(streams.TRAINERS_SUBJECTS, cb=self._on_message)

    async def run(self, stopping: asyncio.Event, every: float = 1.0) -> None:
        """Until `stopping`: forget the silent trainers, so that their listeners hear it."""
        while not stopping.is_set():
            self._expire()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), every)

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
        status.receive_time.GetCurrentTime()
        now = self._clock()
        before = self._seen.get(status.name)
        if status.goodbye:
            if self._seen.pop(status.name, None) is not None:
                log.info("trainer %s said goodbye", status.name)
                self._tell(LEFT, status)
            return
        if before is None:
            log.info("trainer %s on %s (%s) is here", status.name, status.host, status.device)
            self._seen[status.name] = _Heard(now, status, now)
            self._tell(APPEARED, status)
            return
        told = before.told
        if _steady(status) != _steady(before.status) or now - told >= QUIET_CHANGE_SECONDS:
            told = now
            self._tell(CHANGED, status)
        self._seen[status.name] = _Heard(now, status, told)

    def _expire(self) -> None:
        now = self._clock()
        for name, heard in list(self._seen.items()):
            if now - heard.seen > self._silence:
                del self._seen[name]
                log.info("trainer %s is silent for %.0f s: taken for gone", name, now - heard.seen)
                self._tell(LEFT, heard.status)

    def _current(self) -> list[trainer_pb2.TrainerStatus]:
        return [heard.status for _, heard in sorted(self._seen.items())]

    def live(self) -> list[trainer_pb2.TrainerStatus]:
        """The trainers heard lately, by name; the silent ones are forgotten."""
        self._expire()
        return self._current()

    def count(self) -> int:
        return len(self.live())

    def training(self, job_id: str, run: int) -> bool:
        """Whether a live trainer says it is on that run of the job."""
        return any(t.job_id == job_id and t.run == run for t in self.live())

    def listeners(self) -> int:
        return len(self._listeners)

    def _tell(self, kind: trainer_pb2.TrainerChangeKind, status: trainer_pb2.TrainerStatus) -> None:
        change = trainer_pb2.TrainerChange(kind=kind, trainer=status)
        for listener in self._listeners:
            if listener.queue.full():
                # Soft state: the oldest change goes rather than anyone waiting.
                listener.queue.get_nowait()
                listener.behind = True
            listener.queue.put_nowait(change)

    async def watch(self, size: int = LISTENER_QUEUE) -> AsyncGenerator[Update, None]:
        """The set as it is now, then each change; the set again after changes were dropped."""
        listener = _Listener(asyncio.Queue(size))
        self._expire()
        # No await between the set and the registration: every later change is queued.
        current = self._current()
        self._listeners.add(listener)
        try:
            yield trainer_pb2.TrainerSet(trainers=current)
            while True:
                change = await listener.queue.get()
                if listener.behind:
                    listener.behind = False
                    while not listener.queue.empty():
                        listener.queue.get_nowait()
                    yield trainer_pb2.TrainerSet(trainers=self._current())
                else:
                    yield change
        finally:
            self._listeners.discard(listener)
