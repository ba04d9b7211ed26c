"""Stores on databases of their own, for tests that look at the commands a store sends."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener, CommandStartedEvent

from store.documents import Document
from store.jobs import JobStore


class StartedCommands(CommandListener):
    """A listener that looks only at the commands as they start (`started`)."""

    def started(self, event: CommandStartedEvent) -> None:
        raise NotImplementedError

    def succeeded(self, event: object) -> None:
        pass

    def failed(self, event: object) -> None:
        pass


@contextlib.asynccontextmanager
async def listened_store(mongo_uri: str, listener: CommandListener) -> AsyncIterator[JobStore]:
    """A JobStore on a database of its own whose client tells `listener` every command."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[listener]
    )
    store = JobStore(client, f"test_{uuid.uuid4().hex[:12]}")
    await store.ensure_indexes()
    try:
        yield store
    finally:
        await store.close()
