"""Chores over a whole collection: a migration run once per database, and deleting a batch
of the documents a retention policy says are due."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection

from store.documents import Document, now


async def once(
    migrations: AsyncCollection[Document], marker: str, work: Callable[[], Awaitable[None]]
) -> None:
    """Run `work` unless the database's `migrations` hold `marker`, then mark it done.

    The mark goes in only after the work, so a scheduler that dies halfway has the next one
    run it again: `work` must be idempotent, which also lets schedulers that start together
    both run it.
    """
    if await migrations.find_one({"_id": marker}) is not None:
        return
    await work()
    await migrations.update_one({"_id": marker}, {"$set": {"done": now()}}, upsert=True)


async def delete_due(
    collection: AsyncCollection[Document], states: Iterable[str], before: datetime, limit: int
) -> int:
    """Delete up to `limit` documents in one of `states` last changed before `before`, through
    the (state, update_time) index; the number deleted. One that changed since it was read
    (a job requeued) is not: the filter is asked again."""
    deleted = 0
    for state in states:
        due = {"state": state, "update_time": {"$lt": before}}
        found = await collection.find(due, {"_id": 1}).limit(limit - deleted).to_list()
        if found:
            ids = [d["_id"] for d in found]
            deleted += (await collection.delete_many({**due, "_id": {"$in": ids}})).deleted_count
        if deleted >= limit:
            break
    return deleted
