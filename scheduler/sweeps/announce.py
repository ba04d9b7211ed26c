"""Announcing a sweep's recorded changes on its subject of the events stream, for watchers.

Each announcement carries the whole sweep and its version, and its message id is the
version, so a repeat (a retry, or two schedulers announcing the same version) is dropped
by JetStream and an older one is ignored by watchers. The store is the truth: a change
that could not be announced is announced again, as stored then, on the driver's next round.
"""

from __future__ import annotations

import logging

from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from store.documents import Document
from store.sweeps import SweepStore, sweep_from, version
from tuner.core import streams
from tuner.v1 import sweep_pb2

log = logging.getLogger(__name__)


class Announcer:
    def __init__(self, js: JetStreamContext, sweeps: SweepStore, timeout: float = 2.0) -> None:
        self._js = js
        self._sweeps = sweeps
        self._timeout = timeout
        # Sweeps whose latest announcement failed, and the version that did.
        self._unannounced: dict[str, int] = {}

    async def changed(self, sweep_id: str) -> None:
        """Announce the sweep as it is stored now."""
        self._unannounced.setdefault(sweep_id, 0)  # kept if the read fails
        doc = await self._sweeps.get(sweep_id)
        if doc is None:
            self._unannounced.pop(sweep_id, None)
            return
        await self.announce(doc)

    async def announce(self, doc: Document) -> None:
        """Announce `doc`, just read or written; on failure it is announced again later."""
        sweep_id, number = doc["_id"], version(doc)
        message = sweep_pb2.SweepChanged(sweep=sweep_from(doc), version=number)
        try:
            await self._js.publish(
                streams.sweep_subject(sweep_id),
                message.SerializeToString(),
                timeout=self._timeout,
                stream=streams.EVENTS_STREAM,
                headers={"Nats-Msg-Id": f"sweep.{sweep_id}.{number}"},
            )
        except (NatsError, TimeoutError) as error:
            self._unannounced[sweep_id] = max(number, self._unannounced.get(sweep_id, 0))
            log.warning("sweep %s: announcing version %d failed: %s", sweep_id, number, error)
            return
        if self._unannounced.get(sweep_id, 0) <= number:
            self._unannounced.pop(sweep_id, None)

    async def retry(self) -> None:
        """Announce again, as stored now, each sweep whose last announcement failed."""
        for sweep_id in sorted(self._unannounced):
            await self.changed(sweep_id)
