"""JobStore: every read and write of job state, each write a conditional update."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, UpdateOne, WriteConcern
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from store import housekeeping, pages
from store.documents import Document, now
from tuner.core.states import (
    ACTIVE,
    CANCELLED,
    FAILED,
    QUEUED,
    RERUNNABLE,
    RUNNING,
    SOURCES,
    SUCCEEDED,
    name,
    names,
)

LEADERBOARD_SIZE = 50
# One leaderboard per dataset ("mnist") and per dataset and model ("mnist/cnn"): accuracies
# of different datasets do not compare. An entry is {_id: "BOARD JOB_ID", board, job}.
LEADERBOARD_ORDER = [
    ("job.result.test_accuracy", DESCENDING),
    ("job.result.training_seconds", ASCENDING),
    ("job._id", ASCENDING),
]
LEADERBOARD_INDEX = [("board", ASCENDING), *LEADERBOARD_ORDER]
_RANK_FIELDS = {f: 1 for f, _ in LEADERBOARD_ORDER}
# The one leaderboard of every dataset together, before there was one a dataset.
_MIXED_INDEX = "result.test_accuracy_-1_result.training_seconds_1__id_1"
_BOARDS_MIGRATION = "leaderboard-per-dataset"
_NUMBERS_MIGRATION = "jobs-numbered-per-owner"
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # before any job's update_time
# What the model retention reads of a job.
MODEL_FIELDS = {"owner": 1, "end_time": 1, "lineage": 1, "hyperparameters.epochs": 1, "result": 1}


class JobStore:
    """Jobs live in `jobs`; the best SUCCEEDED ones are copied to a small `leaderboard`."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        db = client.get_database(database, write_concern=WriteConcern(j=True))
        self._client = client
        self.jobs = db.jobs
        self.leaderboard = db.leaderboard
        # {_id: BOARD, token}: a new token after every change of the board's entries.
        self.board_tokens = db.leaderboard_tokens
        self.points = db.analysis_points  # store/points.py
        self.migrations = db.migrations
        self.numbers = pages.Numbers(db.owner_numbers, "jobs")  # store/pages.py

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
        await self.jobs.create_index([("owner", ASCENDING), (pages.FIELD, DESCENDING)])
        await self.jobs.create_index(
            [("owner", ASCENDING), ("state", ASCENDING), (pages.FIELD, DESCENDING)]
        )
        await self.jobs.create_index([("state", ASCENDING), ("dispatch_sequence", ASCENDING)])
        await self.jobs.create_index([("state", ASCENDING), ("update_time", ASCENDING)])
        await self.leaderboard.create_index(LEADERBOARD_INDEX)
        # The shorter jobs of a lineage; the models to review; an owner's latest successes.
        await self.jobs.create_index(
            [("lineage", ASCENDING), ("state", ASCENDING), ("hyperparameters.epochs", ASCENDING)]
        )
        await self.jobs.create_index(
            [
                ("state", ASCENDING),
                ("model_review", ASCENDING),
                ("model_deleted", ASCENDING),
                ("end_time", ASCENDING),
            ]
        )
        await self.jobs.create_index(
            [("owner", ASCENDING), ("state", ASCENDING), ("end_time", ASCENDING)]
        )
        await self.migrate_leaderboard()
        await self.number_old_jobs()
        for replaced in ("owner_1_create_time_-1", "owner_1_state_1"):
            with contextlib.suppress(OperationFailure):
                await self.jobs.drop_index(replaced)

    async def migrate_leaderboard(self) -> None:
        """Once per database: rank every SUCCEEDED job onto the per-dataset leaderboards and
        drop the old mixed one (its entries have no `board`).

        The old board held only the top LEADERBOARD_SIZE of all datasets together, so the
        new boards are built from `jobs` (`rank_all`). It is idempotent: schedulers that start
        together may both run it.
        """
        await housekeeping.once(self.migrations, _BOARDS_MIGRATION, self._rebuild_leaderboards)

    async def _rebuild_leaderboards(self) -> None:
        await self.rank_all()
        await self.leaderboard.delete_many({"board": {"$exists": False}})
        with contextlib.suppress(OperationFailure):
            await self.leaderboard.drop_index(_MIXED_INDEX)

    async def rank_all(self) -> None:
        """Rank the best SUCCEEDED jobs of every board from one walk of them all (a few fields
        each), keeping the best LEADERBOARD_SIZE of each board in memory, then `rank`."""
        with pymongo.timeout(pages.WALK_SECONDS):
            await self._rank_all()

    async def _rank_all(self) -> None:
        best: dict[str, list[tuple[float, float, str]]] = {}
        fields = {"result": 1, "hyperparameters.dataset": 1, "hyperparameters.model": 1}
        async for doc in self.jobs.find({"state": name(SUCCEEDED)}, fields):
            if not doc.get("result"):
                continue
            for board in boards_of(doc):
                kept = best.setdefault(board, [])
                kept.append(rank_key(doc))
                if len(kept) > 4 * LEADERBOARD_SIZE:
                    kept.sort()
                    del kept[LEADERBOARD_SIZE:]
        winners = sorted({k[2] for kept in best.values() for k in sorted(kept)[:LEADERBOARD_SIZE]})
        for doc in await self.jobs.find({"_id": {"$in": winners}}).to_list():
            await self.rank(doc)

    async def number_old_jobs(self) -> None:
        """Once per database: number the jobs stored before jobs had numbers (store/pages.py)."""
        await housekeeping.once(
            self.migrations, _NUMBERS_MIGRATION, lambda: pages.number_old(self.jobs, self.numbers)
        )

    async def insert(self, doc: Document) -> bool:
        """False when a job with this id already exists. Gives the job its owner's next
        number (store/pages.py) unless it has one."""
        if pages.FIELD not in doc:
            doc[pages.FIELD] = await self.numbers.next(doc["owner"])
        try:
            await self.jobs.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def delete_ended(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` FAILED or CANCELLED jobs last changed before `before`; the
        number deleted. A job requeued since it was read is not: the filter is asked again."""
        ended = (name(FAILED), name(CANCELLED))
        return await housekeeping.delete_due(self.jobs, ended, before, limit)

    async def insert_many(self, docs: list[Document]) -> int:
        """Store jobs that are not stored yet (an import, a benchmark's history), numbered in
        the order given after each owner's jobs; the number stored. Unlike `insert`, it does
        not rank SUCCEEDED ones: `rank_all` does, for all of them at once."""
        by_owner: dict[str, list[Document]] = {}
        for doc in docs:
            by_owner.setdefault(doc["owner"], []).append(doc)
        for owner, owned in by_owner.items():
            first = await self.numbers.take(owner, len(owned))
            for n, doc in enumerate(owned, start=first):
                doc[pages.FIELD] = n
        try:
            result = await self.jobs.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            return int(error.details["nInserted"])
        return len(result.inserted_ids)

    async def get(self, job_id: str) -> Document | None:
        return await self.jobs.find_one({"_id": job_id})

    async def get_many(self, job_ids: Iterable[str]) -> dict[str, Document]:
        """The jobs of `job_ids` that exist, by id: one query."""
        ids = list(job_ids)
        if not ids:
            return {}
        return {doc["_id"]: doc for doc in await self.jobs.find({"_id": {"$in": ids}}).to_list()}

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

    async def requeue(
        self, job_id: str, run: int, owner: str, reused_epochs: int = 0, number: int = 0
    ) -> bool:
        """Start a new run of a FAILED or CANCELLED job, as `owner`'s newest job (`number`, or
        the owner's next if 0); True if this call did it."""
        number = number or await self.numbers.next(owner)
        t = now()
        result = await self.jobs.update_one(
            {"_id": job_id, "run": run, "state": {"$in": names(RERUNNABLE)}},
            {
                "$set": {
                    "state": name(QUEUED),
                    "run": run + 1,
                    "owner": owner,
                    pages.FIELD: number,
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
                    "reused_epochs": reused_epochs,
                    "model_review": None,
                    "model_deleted": None,
                }
            },
        )
        return result.modified_count == 1

    async def longest_succeeded(self, lineage: str, below_epochs: int) -> Document | None:
        """The SUCCEEDED job of `lineage` with the most epochs below `below_epochs` whose model
        (and so its final checkpoint) is still stored; None if there is none.

        SecantusDB reads every document a filter matches, sort and limit or not, so the filter
        is what must be small: a lineage holds one job per number of epochs (1..100), so this
        one matches fewer than 100, through the (lineage, state, epochs) index.
        """
        cursor = self.jobs.find(
            {
                "lineage": lineage,
                "state": name(SUCCEEDED),
                "hyperparameters.epochs": {"$lt": below_epochs},
            },
            {"hyperparameters.epochs": 1, "model_deleted": 1},
        )
        found = [d for d in await cursor.to_list() if not d.get("model_deleted")]
        return max(found, key=lambda d: int(d["hyperparameters"]["epochs"]), default=None)

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
        self, owner: str, states: Iterable[int], limit: int, below: int | None
    ) -> list[Document]:
        """The owner's jobs in `states` (all if none), newest first, numbered below `below`
        (the first page if None): O(limit) documents read, see store/pages.py.

        QUEUED and RUNNING are read together, as states the scheduler caps; then each
        finished state, none below the page that the states read before it filled.
        """
        if below is None:
            below = await self.numbers.last(owner) + 1
        wanted = set(names(states))
        if not wanted:
            return await pages.newest(self.jobs, [{"owner": owner}], below, limit)
        active = [{"owner": owner, "state": s} for s in sorted(wanted & set(names(ACTIVE)))]
        found = await pages.newest(self.jobs, active, below, limit, capped=True) if active else []
        for state in sorted(wanted - set(names(ACTIVE))):
            floor = int(found[limit - 1][pages.FIELD]) if len(found) >= limit else 1
            condition = {"owner": owner, "state": state}
            more = await pages.newest(self.jobs, [condition], below, limit, floor)
            found = pages.newest_first(found + more)[:limit]
        return found

    async def count_active(self, owner: str, at_most: int) -> int:
        """The owner's QUEUED and RUNNING jobs, counted up to `at_most` (no full count)."""
        cursor = self.jobs.find(
            {"owner": owner, "state": {"$in": names(ACTIVE)}}, {"_id": 1}
        ).limit(at_most)
        return len(await cursor.to_list())

    async def count_in_state(self, state: int, at_most: int) -> int:
        """Jobs in `state`, counted up to `at_most` (the count stops there).

        SecantusDB reads every document a filter matches, limit or not, so a FINISHED state of
        a long history is counted by ranges of `update_time` back from now, through the
        (state, update_time) index: each as wide as the density counted so far says the rest
        needs (`pages.further`; eight times as wide while it counted none). It reads
        about `at_most` documents, not the whole history.
        """
        counted = 0
        high: datetime | None = None
        low = now() - timedelta(seconds=10)
        while counted < at_most:
            span: dict[str, Any] = {} if low <= _EARLIEST else {"$gte": low}
            if high is not None:
                span["$lt"] = high
            query = {"state": name(state), "update_time": span} if span else {"state": name(state)}
            counted += len(await self.jobs.find(query, {"_id": 1}).to_list())
            if low <= _EARLIEST:
                break
            high, spanned = low, (now() - low).total_seconds()
            back = spanned * 8 if not counted else pages.further(spanned, at_most, counted)
            # A few old jobs can say the rest lies before year 1: stop at the earliest.
            low = high - timedelta(seconds=min(back, (high - _EARLIEST).total_seconds()))
        return min(counted, at_most)

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
        """Put a SUCCEEDED job on its dataset's and its dataset and model's leaderboards and
        keep only the best LEADERBOARD_SIZE of each.

        SecantusDB reads every entry a filter matches, sort and limit or not: a board's
        filter matches about LEADERBOARD_SIZE entries, so this and `top` stay
        O(LEADERBOARD_SIZE) however many jobs there are. A board is read first, so a job
        that would not rank (most, once a board is full) writes nothing.
        """
        changed = []
        for board in boards_of(doc):
            entry = {"_id": f"{board} {doc['_id']}", "board": board, "job": doc}
            ranked = await self.leaderboard.find({"board": board}, _RANK_FIELDS).to_list()
            others = sorted(
                (e for e in ranked if e["_id"] != entry["_id"]), key=lambda e: rank_key(e["job"])
            )
            losers = [e["_id"] for e in others[LEADERBOARD_SIZE - 1 :]]
            if losers and rank_key(doc) > rank_key(others[LEADERBOARD_SIZE - 1]["job"]):
                if len(ranked) > len(others):  # on the board before, and ranks no more
                    await self.leaderboard.delete_one({"_id": entry["_id"]})
                    changed.append(board)
                continue
            await self.leaderboard.replace_one({"_id": entry["_id"]}, entry, upsert=True)
            if losers:
                await self.leaderboard.delete_many({"_id": {"$in": losers}})
            changed.append(board)
        if changed:  # new tokens for the boards changed (scheduler/leaderboards.py)
            tokens = [
                UpdateOne({"_id": b}, {"$set": {"token": ObjectId()}}, upsert=True) for b in changed
            ]
            await self.board_tokens.bulk_write(tokens)

    async def board_token(self, board: str) -> ObjectId | None:
        """The token `rank` set after the board last changed; None before any change."""
        doc = await self.board_tokens.find_one({"_id": board})
        return None if doc is None else doc["token"]

    async def leaderboard_ids(self) -> set[str]:
        """The ids of the jobs on any leaderboard: at most LEADERBOARD_SIZE a board."""
        cursor = self.leaderboard.find({"board": {"$exists": True}}, {"job._id": 1})
        return {str(d["job"]["_id"]) for d in await cursor.to_list()}

    async def models_to_review(self, ended_before: datetime, at: datetime) -> list[Document]:
        """SUCCEEDED jobs whose model the retention must look at: those it never looked at that
        ended before `ended_before`, and those it kept whose next look is due at `at`.

        Each filter matches only what is due: a job leaves it once looked at (its model
        deleted, or its next look set later), so a pass reads what it has to decide on.
        """
        due: list[dict[str, Any]] = [
            {"model_review": None, "model_deleted": None, "end_time": {"$lt": ended_before}},
            {"model_review": {"$lte": at}},
        ]
        found: list[Document] = []
        for condition in due:
            cursor = self.jobs.find({"state": name(SUCCEEDED), **condition}, MODEL_FIELDS)
            found.extend(await cursor.to_list())
        return found

    async def latest_successes(self, owner: str, count: int, at: datetime) -> set[str]:
        """The ids of the owner's `count` SUCCEEDED jobs that ended last, before `at`.

        Asked over a window of the latest day, then 4, 16, ... days back until it holds
        `count` of them (or goes back 100 years): the filter matches some multiple of `count`
        jobs for a steady owner, not all of the owner's history.
        """
        if count <= 0:
            return set()
        window = timedelta(days=1)
        while True:
            since = at - window if window < timedelta(days=36500) else None
            condition: dict[str, Any] = {"$lte": at}
            if since is not None:
                condition["$gt"] = since
            cursor = self.jobs.find(
                {"owner": owner, "state": name(SUCCEEDED), "end_time": condition},
                {"end_time": 1},
            )
            docs = await cursor.to_list()
            if len(docs) >= count or since is None:
                docs.sort(key=lambda d: (d["end_time"], d["_id"]), reverse=True)
                return {str(d["_id"]) for d in docs[:count]}
            window *= 4

    async def review_model_at(self, job_id: str, at: datetime) -> None:
        """The retention keeps the job's model until it looks again at `at`."""
        await self.jobs.update_one(
            {"_id": job_id, "state": name(SUCCEEDED)}, {"$set": {"model_review": at}}
        )

    async def set_model_deleted(self, job_id: str, at: datetime) -> None:
        """The retention deleted the job's model (and its final checkpoint) at `at`."""
        await self.jobs.update_one(
            {"_id": job_id, "state": name(SUCCEEDED)},
            {"$set": {"model_deleted": at, "model_review": None}},
        )

    async def top(self, limit: int, dataset: str, model: str = "") -> list[Document]:
        """The best `limit` jobs of `dataset`, of every model or only of `model`.

        The board's filter matches about LEADERBOARD_SIZE entries; they are sorted here, which
        costs SecantusDB less than sorting them itself.
        """
        entries = await self.leaderboard.find({"board": board_of(dataset, model)}).to_list()
        return sorted((e["job"] for e in entries), key=rank_key)[:limit]


def rank_key(job: Document) -> tuple[float, float, str]:
    """A SUCCEEDED job's place on a leaderboard: sorted ascending, LEADERBOARD_ORDER."""
    result = job["result"]
    return -float(result["test_accuracy"]), float(result["training_seconds"]), str(job["_id"])


def board_of(dataset: str, model: str = "") -> str:
    """The leaderboard of `dataset`'s jobs, of every model or only of `model`."""
    return f"{dataset}/{model}" if model else dataset


def boards_of(doc: Document) -> list[str]:
    """The leaderboards a SUCCEEDED job ranks on: its dataset's, its dataset and model's."""
    hp = doc["hyperparameters"]
    return [board_of(hp["dataset"]), board_of(hp["dataset"], hp["model"])]
