"""Queues jobs whose publish to NATS never got through (NATS down, scheduler killed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from pymongo.errors import PyMongoError

from scheduler.dispatch import Dispatcher
from store.documents import now
from store.jobs import JobStore

log = logging.getLogger(__name__)


async def reconcile(
    store: JobStore, dispatcher: Dispatcher, stopping: asyncio.Event, every: float = 5.0
) -> None:
    while not stopping.is_set():
        try:
            for doc in await store.undispatched(now() - timedelta(seconds=every)):
                log.info("job %s run %d was never queued: queuing it now", doc["_id"], doc["run"])
                await dispatcher.dispatch(doc)
        except PyMongoError as error:
            log.warning("reconciling queued jobs: database unavailable: %s", error)
        except Exception as error:
            log.warning("reconciling queued jobs: %s", error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=every)
