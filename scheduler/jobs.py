"""Submitting and cancelling jobs: shared by the RPCs and by sweeps."""

from __future__ import annotations

import asyncio
import logging

import grpc

from scheduler.dispatch import Dispatcher
from scheduler.metrics import Metrics
from scheduler.outages import NATS_OUTAGES
from store import pages
from store.documents import Document, new_job, now
from store.jobs import JobStore
from tuner.core import states
from tuner.core.hyperparameters import canonical_key, job_id, lineage
from tuner.v1 import job_pb2

log = logging.getLogger(__name__)


class Refused(Exception):
    """The request cannot be carried out; `code` is the gRPC status to answer with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Jobs:
    def __init__(
        self,
        store: JobStore,
        dispatcher: Dispatcher,
        max_active_per_user: int,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._max_active = max_active_per_user
        self._metrics = metrics or Metrics()

    async def submit(self, hp: job_pb2.Hyperparameters, user: str) -> tuple[Document, bool]:
        """Queue normalized hyperparameters for `user`: (the job, whether it already existed)."""
        try:
            doc, duplicate = await self._submit(hp, user)
        except Refused as refused:
            self._metrics.refused(refused.code.name.lower())
            raise
        self._metrics.submitted("deduplicated" if duplicate else "new")
        return doc, duplicate

    async def _submit(self, hp: job_pb2.Hyperparameters, user: str) -> tuple[Document, bool]:
        key = canonical_key(hp)
        jid = job_id(key)
        existing = await self._store.get(jid)
        if existing is not None and existing["key"] != key:
            log.error("job id %s is taken by another configuration", jid)
            raise Refused(grpc.StatusCode.INTERNAL, "job id collision")
        if existing is not None and states.of(existing) not in states.RERUNNABLE:
            log.info("job %s resubmitted by %s: already %s", jid, user, existing["state"])
            return existing, True
        # The job's number among the user's (store/pages.py) is taken alongside: a refused
        # submission leaves a gap, which pages step over.
        active, reused, number = await asyncio.gather(
            self._store.count_active(user, self._max_active),
            self.reusable_epochs(hp),
            self._store.numbers.next(user),
        )
        if active >= self._max_active:
            raise Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{user} has {self._max_active} jobs queued or running, the most allowed: "
                "wait for some to finish or cancel some",
            )
        # Another submission of the same configuration may win either write: then it is a duplicate.
        doc: Document | None
        if existing is None:
            doc = {**new_job(jid, key, hp, user, reused), pages.FIELD: number}
            created = await self._store.insert(doc)  # as written: read back only if it lost
        else:
            created = await self._store.requeue(jid, existing["run"], user, reused, number)
        if not created or existing is not None:
            doc = await self._store.get(jid)
        if doc is None:
            raise Refused(grpc.StatusCode.ABORTED, "the job changed meanwhile; try again")
        if not created:
            return doc, True
        log.info("job %s run %d submitted by %s: %s", jid, doc["run"], user, key)
        if reused:
            log.info("job %s is expected to reuse %d epochs of a shorter job", jid, reused)
        try:
            await self._dispatcher.announce(doc)
            await self._dispatcher.dispatch(doc)
        except Exception as error:  # the reconciler publishes it once NATS is back
            log.warning("job %s stays queued until NATS answers: %s", jid, error)
        return doc, False

    async def reusable_epochs(self, hp: job_pb2.Hyperparameters) -> int:
        """The epochs a job of `hp` should take from the longest shorter SUCCEEDED job of its
        lineage, 0 if none: a prediction, the trainer decides from the checkpoints it finds."""
        shorter = await self._store.longest_succeeded(lineage(hp), hp.epochs)
        return 0 if shorter is None else int(shorter["hyperparameters"]["epochs"])

    async def cancel(self, doc: Document, reason: str) -> Document:
        """Cancel a QUEUED or RUNNING job; its trainer hears of it at once."""
        # A trainer may start the job between the read and the write: try again then.
        for _ in range(3):
            if states.of(doc) in states.TERMINAL:
                raise Refused(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"job_id: job {doc['_id']} is already {doc['state']}",
                )
            changes = {"error": reason, "end_time": now()}
            if await self._store.transition(doc["_id"], doc["run"], states.CANCELLED, changes):
                break
            doc = await self._store.get(doc["_id"]) or doc
        else:
            raise Refused(grpc.StatusCode.ABORTED, "the job kept changing; try again")
        doc = await self._store.get(doc["_id"]) or doc
        log.info("job %s run %d cancelled: %s", doc["_id"], doc["run"], reason)
        # Recorded all the same if NATS does not answer: the reconciler announces it later,
        # and the recorder tells the trainer again at its next report.
        for tell in (self._dispatcher.announce, self._dispatcher.withdraw):
            try:
                await tell(doc)
            except NATS_OUTAGES as error:
                log.warning("job %s: cancelled; NATS did not take it: %r", doc["_id"], error)
        return doc
