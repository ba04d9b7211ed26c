"""Which final models are kept, and the loop that deletes the others from the object store.

A SUCCEEDED job's model (models/JOB/*, and its run's final checkpoint, which a longer job of
its lineage would continue from) is kept while the job is on a leaderboard (the top
LEADERBOARD_SIZE of its dataset's, or of its dataset and model's) or among the last
`per_user` SUCCEEDED jobs of its owner; any other is deleted once the job ended more than
`days` ago. A job's final checkpoint goes with its model: the reuse lookup
(JobStore.longest_succeeded) then no longer offers that job, and a longer job of the lineage
continues from the longest shorter one still kept, or trains from scratch.

FAILED and CANCELLED jobs, and sweeps that ended, are deleted `history_days` after their last
change (0 keeps them). SUCCEEDED jobs are kept: a resubmission of their configuration returns
them, and the leaderboards and the analysis read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from scheduler.outages import OUTAGES
from store.documents import Document, now
from store.jobs import LEADERBOARD_SIZE, JobStore
from store.sweeps import SweepStore
from tuner.core import env as settings
from tuner.core import streams

log = logging.getLogger(__name__)

MODEL_FORMATS = ("state-dict", "exported")


@dataclass(frozen=True)
class RetentionPolicy:
    per_user: int = 20  # TUNER_MODELS_PER_USER
    days: float = 30.0  # TUNER_MODEL_RETENTION_DAYS
    every_seconds: float = 3600.0  # TUNER_MODEL_RETENTION_INTERVAL_SECONDS
    max_per_pass: int = 1000
    history_days: float = 90.0  # TUNER_HISTORY_RETENTION_DAYS; 0: failed jobs and sweeps kept

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetentionPolicy:
        """Raises ConfigError naming the variable that is wrong."""
        return cls(
            per_user=settings.integer(env, "TUNER_MODELS_PER_USER", 20, minimum=0),
            days=settings.number(env, "TUNER_MODEL_RETENTION_DAYS", 30.0, positive=False),
            every_seconds=settings.number(env, "TUNER_MODEL_RETENTION_INTERVAL_SECONDS", 3600.0),
            history_days=settings.number(env, "TUNER_HISTORY_RETENTION_DAYS", 90.0, positive=False),
        )

    def describe(self) -> str:
        """What is kept, for the refusals of GetModel."""
        return (
            f"the top {LEADERBOARD_SIZE} of each dataset's and each dataset and model's "
            f"leaderboard and each user's last "
            f"{self.per_user} jobs; the others for {self.days:g} days after they end"
        )


@dataclass
class Pass:
    """What one pass did."""

    deleted: list[str]
    kept: list[str]
    left: int  # due but left to the next pass


class Retention:
    """Every `every_seconds`, one pass over the models that are due (see `sweep`)."""

    def __init__(
        self,
        store: JobStore,
        js: JetStreamContext,
        policy: RetentionPolicy,
        sweeps: SweepStore,
    ) -> None:
        self._store = store
        self._js = js
        self._policy = policy
        self._sweeps = sweeps
        # A kept model is looked at again a day later (sooner when models live less long):
        # then one that left the leaderboard, or its owner's last jobs, expires.
        span = timedelta(days=min(policy.days, 1.0))
        self._again = max(span, timedelta(seconds=policy.every_seconds))

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                done = await self.sweep()
                if done.deleted or done.left:
                    log.info(
                        "model retention: %d deleted, %d kept, %d left for the next pass",
                        len(done.deleted), len(done.kept), done.left,
                    )  # fmt: skip
                jobs, sweeps = await self.expire_history()
                if jobs or sweeps:
                    log.info("history retention: %d jobs and %d sweeps deleted", jobs, sweeps)
            except OUTAGES as error:
                log.warning("retention: %r", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self._policy.every_seconds)

    async def sweep(self, at: datetime | None = None) -> Pass:
        """Look at the models that are due, at most `max_per_pass` of them: delete each one
        that is not kept, and set when to look again at each one that is.

        The work is O(what is due), not O(every job): the store's query matches only the
        SUCCEEDED jobs that ended more than `days` ago and were never looked at, and the kept
        ones whose next look has come (a job leaves it once looked at). Per job looked at: one
        leaderboard check (a set, read once a pass), the owner's latest successes (one bounded
        query per owner a pass), three object deletions and one write. What is due beyond
        `max_per_pass` (after an outage, or a first pass over an old database) is left to the
        next passes.
        """
        at = at or now()
        due = await self._store.models_to_review(at - timedelta(days=self._policy.days), at)
        done = Pass([], [], max(0, len(due) - self._policy.max_per_pass))
        if not due:
            return done
        leaders = await self._store.leaderboard_ids()
        latest: dict[str, set[str]] = {}
        bucket = await self._bucket()
        for doc in due[: self._policy.max_per_pass]:
            job_id, owner = str(doc["_id"]), str(doc["owner"])
            if owner not in latest:
                latest[owner] = await self._store.latest_successes(owner, self._policy.per_user, at)
            if job_id in leaders or job_id in latest[owner]:
                await self._store.review_model_at(job_id, at + self._again)
                done.kept.append(job_id)
                continue
            if bucket is not None:
                for name in objects_of(doc):
                    with contextlib.suppress(ObjectNotFoundError):
                        await bucket.delete(name)
            await self._store.set_model_deleted(job_id, at)
            log.info("job %s: model deleted (ended %s)", job_id, doc["end_time"])
            done.deleted.append(job_id)
        return done

    async def expire_history(self, at: datetime | None = None) -> tuple[int, int]:
        """Delete the FAILED and CANCELLED jobs and the ended sweeps last changed more than
        `history_days` before `at`, `max_per_pass` at a time until none is left; the numbers
        of (jobs, sweeps) deleted. O(what is deleted), through (state, update_time) indexes."""
        if not self._policy.history_days:
            return 0, 0
        before = (at or now()) - timedelta(days=self._policy.history_days)
        jobs = await self._delete_all(self._store.delete_ended, before)
        sweeps = await self._delete_all(self._sweeps.delete_ended, before)
        return jobs, sweeps

    async def _delete_all(
        self, delete: Callable[[datetime, int], Awaitable[int]], before: datetime
    ) -> int:
        total = 0
        while True:
            deleted = await delete(before, self._policy.max_per_pass)
            total += deleted
            if deleted < self._policy.max_per_pass:
                return total

    async def _bucket(self) -> ObjectStore | None:
        """None when no trainer made the bucket yet: then there is nothing to delete."""
        try:
            return await self._js.object_store(streams.CHECKPOINTS_BUCKET)
        except BucketNotFoundError:
            return None


def objects_of(doc: Document) -> list[str]:
    """A SUCCEEDED job's objects: its model in each format and its run's final checkpoint."""
    names = [streams.model_object(str(doc["_id"]), f) for f in MODEL_FORMATS]
    device = str((doc.get("result") or {}).get("device", ""))
    if doc.get("lineage") and device:
        # "cuda:0" trained a cuda checkpoint: they are kept per kind of device.
        kind = device.split(":")[0]
        names.append(
            streams.checkpoint_object(doc["lineage"], kind, doc["hyperparameters"]["epochs"])
        )
    return names
