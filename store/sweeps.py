"""SweepStore: sweeps and their trials, and the lease that lets one scheduler drive each.

Every change a watcher can see bumps the sweep's `version`, which orders its announcements.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, WriteConcern
from pymongo.errors import OperationFailure

from store import housekeeping, pages
from store.documents import Document, hyperparameters_from, now, timestamps
from tuner.core import states
from tuner.v1 import sweep_pb2

RUNNING = states.sweep_name(states.SWEEP_RUNNING)
_NUMBERS_MIGRATION = "sweeps-numbered-per-owner"


class SweepStore:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        db = client.get_database(database, write_concern=WriteConcern(j=True))
        self.sweeps = db.sweeps
        self.migrations = db.migrations
        self.numbers = pages.Numbers(db.owner_numbers, "sweeps")  # store/pages.py

    async def ensure_indexes(self) -> None:
        await self.sweeps.create_index([("owner", ASCENDING), (pages.FIELD, DESCENDING)])
        await self.sweeps.create_index([("state", ASCENDING), ("lease_until", ASCENDING)])
        await self.sweeps.create_index([("state", ASCENDING), ("update_time", ASCENDING)])
        await housekeeping.once(
            self.migrations, _NUMBERS_MIGRATION, lambda: pages.number_old(self.sweeps, self.numbers)
        )
        with contextlib.suppress(OperationFailure):
            await self.sweeps.drop_index("owner_1_create_time_-1")

    async def insert(self, doc: Document) -> None:
        """Gives the sweep its owner's next number (store/pages.py) unless it has one."""
        if pages.FIELD not in doc:
            doc[pages.FIELD] = await self.numbers.next(doc["owner"])
        await self.sweeps.insert_one(doc)

    async def delete_ended(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` ended sweeps last changed before `before`; the number deleted."""
        ended = [states.sweep_name(s) for s in (states.SWEEP_SUCCEEDED, states.SWEEP_CANCELLED)]
        return await housekeeping.delete_due(self.sweeps, ended, before, limit)

    async def get(self, sweep_id: str) -> Document | None:
        return await self.sweeps.find_one({"_id": sweep_id})

    async def list_owned(self, owner: str, limit: int) -> list[Document]:
        """The owner's newest `limit` sweeps: O(limit) documents read, see store/pages.py."""
        below = await self.numbers.last(owner) + 1
        return await pages.newest(self.sweeps, [{"owner": owner}], below, limit)

    async def claimable(self, at: datetime) -> list[Document]:
        """RUNNING sweeps whose driver's lease ran out (or that never had one)."""
        cursor = self.sweeps.find({"state": RUNNING, "lease_until": {"$lt": at}}, {"_id": 1})
        return await cursor.limit(100).to_list()

    async def claim(self, sweep_id: str, driver: str, seconds: float) -> bool:
        """Take or renew the right to drive a sweep; False if another driver holds it."""
        t = now()
        result = await self.sweeps.update_one(
            {
                "_id": sweep_id,
                "state": RUNNING,
                "$or": [{"driver": driver}, {"lease_until": {"$lt": t}}],
            },
            {"$set": {"driver": driver, "lease_until": t + timedelta(seconds=seconds)}},
        )
        return result.modified_count == 1

    async def add_trial(self, sweep_id: str, driver: str, trial: Document) -> bool:
        """Append trial number N once, and only by the driver holding the lease."""
        result = await self.sweeps.update_one(
            {
                "_id": sweep_id,
                "driver": driver,
                "state": RUNNING,
                "trials": {"$size": trial["number"] - 1},  # numbers start at 1
            },
            {"$push": {"trials": trial}, "$set": {"update_time": now()}, "$inc": {"version": 1}},
        )
        return result.modified_count == 1

    async def set_trials(self, sweep_id: str, driver: str, trials: list[Document]) -> bool:
        result = await self.sweeps.update_one(
            {"_id": sweep_id, "driver": driver, "trials": {"$size": len(trials)}},
            {"$set": {"trials": trials, "update_time": now()}, "$inc": {"version": 1}},
        )
        return result.modified_count == 1

    async def finish(self, sweep_id: str, state: int) -> bool:
        """Move a RUNNING sweep to `state` (SWEEP_SUCCEEDED or SWEEP_CANCELLED)."""
        t = now()
        result = await self.sweeps.update_one(
            {"_id": sweep_id, "state": RUNNING},
            {
                "$set": {"state": states.sweep_name(state), "end_time": t, "update_time": t},
                "$inc": {"version": 1},
            },
        )
        return result.modified_count == 1


def new_sweep(sweep_id: str, spec: sweep_pb2.SweepSpec, owner: str) -> Document:
    t = now()
    return {
        "_id": sweep_id,
        "name": spec.name,
        "spec": spec.SerializeToString(),
        "owner": owner,
        "state": RUNNING,
        "version": 1,
        "trials": [],
        "driver": "",
        "lease_until": datetime.fromtimestamp(0, UTC),
        "create_time": t,
        "end_time": None,
        "update_time": t,
    }


def new_trial(number: int, job: Document, reused: bool) -> Document:
    return {
        "number": number,
        "job_id": job["_id"],
        "hyperparameters": job["hyperparameters"],
        "state": job["state"],
        "test_accuracy": 0.0,
        "curve": [],
        "pruned": False,
        "reused": reused,
    }


def version(doc: Document) -> int:
    """The sweep's count of recorded changes (sweeps stored before versions count 0)."""
    return int(doc.get("version", 0))


def best_trial(trials: list[Document]) -> Document | None:
    done = [t for t in trials if states.of(t) == states.SUCCEEDED and not t["pruned"]]
    return max(done, key=lambda t: (t["test_accuracy"], -t["number"]), default=None)


_SWEEP_TIMES = ("create_time", "end_time", "update_time")


def sweep_from(doc: Document) -> sweep_pb2.Sweep:
    best = best_trial(doc["trials"])
    return sweep_pb2.Sweep(
        id=doc["_id"],
        spec=sweep_pb2.SweepSpec.FromString(doc["spec"]),
        state=states.sweep_of(doc),
        owner=doc["owner"],
        trials=[
            sweep_pb2.Trial(
                number=t["number"],
                job_id=t["job_id"],
                hyperparameters=hyperparameters_from(t["hyperparameters"]),
                state=states.of(t),
                test_accuracy=t["test_accuracy"],
                epochs_done=len(t["curve"]),
                pruned=t["pruned"],
                reused=t["reused"],
            )
            for t in doc["trials"]
        ],
        best_trial=0 if best is None else best["number"],  # 0: none yet
        **timestamps(doc, _SWEEP_TIMES),
    )
