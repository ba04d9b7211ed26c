"""JobStore: every read and write of job state, each write a conditional update."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, WriteConcern
from pymongo.errors import DuplicateKeyError

from store.documents import Document, now
from tuner.core.states import ACTIVE, QUEUED, RERUNNABLE, RUNNING, SOURCES, name, names

LEADERBOARD_SIZE = 50
LEADERBOARD_ORDER = [
    ("result.test_accuracy", DESCENDING),
    ("result.training_seconds", ASCENDING),
    ("_id", ASCENDING),
]


class JobStore:
    """Jobs live in `jobs`; the best SUCCEEDED ones are copied to a small `leaderboard`."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        db = client.get_database(database, write_concern=WriteConcern(j=True))
        self._client = client
        self.jobs = db.jobs
        self.leaderboard = db.leaderboard

    @classmethod
    def connect(
        cls, uri: str, database: str, timeout_ms: int = 5000, operation_timeout_ms: int = 15000
    ) -> JobStore:
        # Without a socket timeout a call into a stalled server (paused, partitioned) waits
        # forever, and so does the loop that made it.
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=operation_timeout_ms,
        )
        return cls(client, database)

    @property
    def client(self) -> AsyncMongoClient[Document]:
        return self._client

    async def close(self) -> None:
        await self._client.close()

    async def ensure_indexes(self) -> None:
        await self.jobs.create_index([("owner", ASCENDING), ("create_time", DESCENDING)])
        await self.jobs.create_index([("state", ASCENDING), ("dispatch_sequence", ASCENDING)])
        await self.jobs.create_index([("state", ASCENDING), ("update_time", ASCENDING)])
        await self.jobs.create_index([("owner", ASCENDING), ("state", ASCENDING)])
        await self.leaderboard.create_index(LEADERBOARD_ORDER)

    async def insert(self, doc: Document) -> bool:
        """False when a job with this id already exists."""
        try:
            await self.jobs.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, job_id: str) -> Document | None:
        return await self.jobs.find_one({"_id": job_id})

    async def transition(
        self,
        job_id: str,
        run: int,
        target: int,
        changes: dict[str, Any] | None = None,
        *,
        source: int | None = None,
        attempt: int | None = None,
    ) -> bool:
        """Move a job to `target` if it is in a state allowed to reach it; True if it moved.

        `source` narrows the allowed states to one; `attempt` refuses events of an
        attempt older than the one recorded, so a superseded trainer cannot win.
        """
        sources = SOURCES[target] if source is None else SOURCES[target] & {source}
        condition: dict[str, Any] = {
            "_id": job_id,
            "run": run,
            "state": {"$in": names(sources)},
        }
        if attempt is not None:
            condition["attempts"] = {"$lte": attempt}
        update = {"state": name(target), "update_time": now(), **(changes or {})}
        result = await self.jobs.update_one(condition, {"$set": update})
        return result.modified_count == 1

    async def requeue(self, job_id: str, run: int, owner: str) -> bool:
        """Start a new run of a FAILED or CANCELLED job; True if this call did it."""
        t = now()
        result = await self.jobs.update_one(
            {"_id": job_id, "run": run, "state": {"$in": names(RERUNNABLE)}},
            {
                "$set": {
                    "state": name(QUEUED),
                    "run": run + 1,
                    "owner": owner,
                    "attempts": 0,
                    "error": "",
                    "trainer": "",
                    "progress": None,
                    "history": [],
                    "result": None,
                    "dispatch_sequence": 0,
                    "create_time": t,
                    "start_time": None,
                    "end_time": None,
                    "update_time": t,
                }
            },
        )
        return result.modified_count == 1

    async def set_dispatched(self, job_id: str, run: int, sequence: int) -> None:
        await self.jobs.update_one(
            {"_id": job_id, "run": run}, {"$set": {"dispatch_sequence": sequence}}
        )

    async def add_epoch(
        self, job_id: str, run: int, attempt: int, metrics: Document, progress: Document
    ) -> bool:
        """Add one epoch once, in epoch order, to the current attempt of a running job."""
        result = await self.jobs.update_one(
            {
                "_id": job_id,
                "run": run,
                "attempts": attempt,
                "state": name(RUNNING),
                "history.epoch": {"$ne": metrics["epoch"]},
            },
            {
                "$push": {"history": {"$each": [metrics], "$sort": {"epoch": 1}}},
                "$set": {"progress": progress, "update_time": now()},
            },
        )
        return result.modified_count == 1

    async def set_trainer(self, job_id: str, run: int, attempt: int, trainer: str) -> None:
        """Name the trainer of an attempt that another of its reports began."""
        await self.jobs.update_one(
            {"_id": job_id, "run": run, "attempts": attempt, "trainer": ""},
            {"$set": {"trainer": trainer}},
        )

    async def list_owned(
        self,
        owner: str,
        states: Iterable[int],
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[Document]:
        """The owner's jobs, newest first, starting after the (create_time, id) cursor."""
        query: dict[str, Any] = {"owner": owner}
        if wanted := names(states):
            query["state"] = {"$in": wanted}
        if before is not None:
            t, job_id = before
            query["$or"] = [
                {"create_time": {"$lt": t}},
                {"create_time": t, "_id": {"$gt": job_id}},
            ]
        cursor = self.jobs.find(query).sort([("create_time", DESCENDING), ("_id", ASCENDING)])
        return await cursor.limit(limit).to_list()

    async def count_active(self, owner: str, at_most: int) -> int:
        """The owner's QUEUED and RUNNING jobs, counted up to `at_most` (no full count)."""
        cursor = self.jobs.find(
            {"owner": owner, "state": {"$in": names(ACTIVE)}}, {"_id": 1}
        ).limit(at_most)
        return len(await cursor.to_list())

    async def count_in_state(self, state: int, at_most: int) -> int:
        """Jobs in `state`, counted up to `at_most` (no full count: SecantusDB's are linear)."""
        cursor = self.jobs.find({"state": name(state)}, {"_id": 1}).limit(at_most)
        return len(await cursor.to_list())

    async def count_state(self, state: int, at_most: int) -> int:
        """Jobs in `state`, counted up to `at_most` (no full count: counts walk every job)."""
        cursor = self.jobs.find({"state": name(state)}, {"_id": 1}).limit(at_most)
        return len(await cursor.to_list())

    async def undispatched(self, older_than: datetime) -> list[Document]:
        """QUEUED jobs whose publish to the queue was never confirmed."""
        cursor = self.jobs.find(
            {"state": name(QUEUED), "dispatch_sequence": 0, "update_time": {"$lt": older_than}}
        )
        return await cursor.limit(100).to_list()

    async def running_quiet(self, older_than: datetime) -> list[Document]:
        """RUNNING jobs whose record has not changed since `older_than`."""
        cursor = self.jobs.find({"state": name(RUNNING), "update_time": {"$lt": older_than}})
        return await cursor.limit(100).to_list()

    async def rank(self, doc: Document) -> None:
        """Put a SUCCEEDED job on the leaderboard and keep only the best LEADERBOARD_SIZE."""
        await self.leaderboard.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        cursor = (
            self.leaderboard.find({}, {"_id": 1}).sort(LEADERBOARD_ORDER).skip(LEADERBOARD_SIZE)
        )
        if losers := [d["_id"] for d in await cursor.to_list()]:
            await self.leaderboard.delete_many({"_id": {"$in": losers}})

    async def top(self, limit: int) -> list[Document]:
        cursor = self.leaderboard.find({}).sort(LEADERBOARD_ORDER).limit(limit)
        return await cursor.to_list()
