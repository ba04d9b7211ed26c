"""Drives sweeps: launches trials as jobs, follows them, prunes losers, ends the sweep.

Each sweep is driven by one scheduler at a time, the one holding its lease; a
scheduler that dies loses the lease and another (or its restart) takes over from
what is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging

from pymongo.errors import PyMongoError

from scheduler.jobs import Jobs, Refused
from scheduler.sweeps.announce import Announcer
from scheduler.sweeps.pruning import should_stop
from scheduler.sweeps.search import Finished, budget, next_point
from store.documents import Document, hyperparameters_from, now
from store.jobs import JobStore
from store.sweeps import SweepStore, new_trial
from tuner.core import states
from tuner.core.hyperparameters import normalized
from tuner.v1 import sweep_pb2

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0


def active(trial: Document) -> bool:
    return states.of(trial) in states.ACTIVE


def succeeded(trial: Document) -> bool:
    """Finished with a result of its own: pruned trials do not count."""
    return states.of(trial) == states.SUCCEEDED and not trial["pruned"]


def pruned_reason(sweep_id: str) -> str:
    return f"pruned by sweep {sweep_id}"


class SweepDriver:
    def __init__(
        self,
        sweeps: SweepStore,
        store: JobStore,
        jobs: Jobs,
        announcer: Announcer,
        name: str,
        every: float = 1.0,
    ) -> None:
        self._sweeps = sweeps
        self._store = store
        self._jobs = jobs
        self._announcer = announcer
        self._name = name
        self._every = every
        self._held: set[str] = set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.round()
            except PyMongoError as error:
                log.warning("driving sweeps: database unavailable: %s", error)
            except Exception:
                log.exception("driving sweeps failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self._every)

    async def round(self) -> None:
        await self._announcer.retry()
        for doc in await self._sweeps.claimable(now()):
            self._held.add(doc["_id"])
        for sweep_id in sorted(self._held):
            if not await self._sweeps.claim(sweep_id, self._name, LEASE_SECONDS):
                self._held.discard(sweep_id)
                continue
            if await self.step(sweep_id):
                self._held.discard(sweep_id)

    async def step(self, sweep_id: str) -> bool:
        """One look at a sweep, announced if it changed; True once it has ended."""
        doc = await self._sweeps.get(sweep_id)
        if doc is None or states.sweep_of(doc) != states.SWEEP_RUNNING:
            return True
        spec = sweep_pb2.SweepSpec.FromString(doc["spec"])
        trials: list[Document] = doc["trials"]
        before = copy.deepcopy(trials)
        await self._follow(sweep_id, spec, trials)
        # Rounds that changed nothing write nothing, so watchers hear only of changes.
        changed = trials != before and await self._sweeps.set_trials(sweep_id, self._name, trials)
        changed = await self._launch(sweep_id, spec, doc["owner"], trials) or changed
        ended = len(trials) >= budget(spec) and not any(active(t) for t in trials)
        if ended and await self._sweeps.finish(sweep_id, states.SWEEP_SUCCEEDED):
            changed = True
            log.info("sweep %s finished: %d trials", sweep_id, len(trials))
        if changed:
            await self._announcer.changed(sweep_id)
        return ended

    async def _follow(
        self, sweep_id: str, spec: sweep_pb2.SweepSpec, trials: list[Document]
    ) -> None:
        """Refresh the running trials from their jobs, and prune the ones that lag."""
        for trial in trials:
            if not active(trial):
                continue
            job = await self._store.get(trial["job_id"])
            if job is None:
                continue
            trial["state"] = job["state"]
            trial["curve"] = [m["test_accuracy"] for m in job["history"]]
            if job["result"]:
                trial["test_accuracy"] = job["result"]["test_accuracy"]
            elif trial["curve"]:
                trial["test_accuracy"] = trial["curve"][-1]
            trial["pruned"] = job["error"] == pruned_reason(sweep_id)
        finished = [t["curve"] for t in trials if succeeded(t)]
        for trial in trials:
            if states.of(trial) != states.RUNNING:
                continue
            others = [t["curve"] for t in trials if t is not trial]
            epochs = trial["hyperparameters"]["epochs"]
            if should_stop(spec, trial["curve"], epochs, others, finished):
                job = await self._store.get(trial["job_id"])
                with contextlib.suppress(Refused):
                    if job is not None:
                        job = await self._jobs.cancel(job, pruned_reason(sweep_id))
                        trial.update(state=job["state"], pruned=True)
                        log.info(
                            "sweep %s: trial %d pruned after epoch %d at accuracy %.4f",
                            sweep_id, trial["number"], len(trial["curve"]), trial["curve"][-1],
                        )  # fmt: skip

    async def _launch(
        self, sweep_id: str, spec: sweep_pb2.SweepSpec, owner: str, trials: list[Document]
    ) -> bool:
        """Start trials up to the parallelism and the budget; True if any started."""
        launched = False
        parallelism = spec.parallelism or 1
        while len(trials) < budget(spec) and sum(active(t) for t in trials) < parallelism:
            finished = [
                Finished(
                    hyperparameters_from(t["hyperparameters"]),
                    t["test_accuracy"] if succeeded(t) else None,
                )
                for t in trials
                if not active(t)
            ]
            hp = normalized(next_point(spec, len(trials), finished))
            try:
                job, duplicate = await self._jobs.submit(hp, owner)
            except Refused as refused:
                log.info("sweep %s waits to launch a trial: %s", sweep_id, refused)
                return launched
            trial = new_trial(
                len(trials) + 1, job, reused=duplicate and states.of(job) == states.SUCCEEDED
            )
            if job["result"]:
                trial["test_accuracy"] = job["result"]["test_accuracy"]
                trial["curve"] = [m["test_accuracy"] for m in job["history"]]
            if not await self._sweeps.add_trial(sweep_id, self._name, trial):
                return launched  # cancelled, or driven elsewhere now
            trials.append(trial)
            launched = True
            log.info(
                "sweep %s: trial %d is job %s%s",
                sweep_id, trial["number"], job["_id"], " (reused)" if trial["reused"] else "",
            )  # fmt: skip
        return launched

    async def cancel(self, doc: Document) -> None:
        """Cancel a sweep's trials that are still queued or running for its owner."""
        for trial in doc["trials"]:
            job = await self._store.get(trial["job_id"])
            if job is not None and active(job) and job["owner"] == doc["owner"]:
                with contextlib.suppress(Refused):
                    await self._jobs.cancel(job, f"sweep {doc['_id']} cancelled")
