"""Drives sweeps: launches trials as jobs, follows them, prunes losers, ends the sweep.

Each sweep is driven by one scheduler at a time, the one holding its lease; a
scheduler that dies loses the lease and another (or its restart) takes over from
what is stored. A driver looks at a sweep again as soon as one of its trials' jobs
has news recorded (the notices on streams.RECORDED_SUBJECTS, from any replica); a
slower round renews the leases, takes over abandoned sweeps and covers a lost notice.

A trial's place in the parallelism is free once its trainer reports the last training
step, before any scheduler has recorded its end: the driver hears the trainers' reports
too, so the next trial is queued while the last one evaluates and its trainer stores the
model, and that trainer takes it at once (the trial stays pending for the strategy until
its end is recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Iterator

from google.protobuf.message import DecodeError
from nats.aio.client import Client
from nats.aio.msg import Msg
from pymongo.errors import PyMongoError

from scheduler.jobs import Jobs, Refused
from scheduler.metrics import Metrics
from scheduler.sweeps.announce import Announcer
from scheduler.sweeps.pruning import should_stop
from scheduler.sweeps.search import Finished, budget, next_point
from store.documents import Document, hyperparameters_from, now
from store.jobs import JobStore
from store.sweeps import SweepStore, new_trial
from tuner.core import states, streams
from tuner.core.hyperparameters import normalized
from tuner.v1 import event_pb2, job_pb2, sweep_pb2

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0
ROUND_SECONDS = 5.0
FAILED_PAUSE_SECONDS = 1.0  # after a failed look, a whole round comes this much later


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
        every: float = ROUND_SECONDS,
        metrics: Metrics | None = None,
    ) -> None:
        self._sweeps = sweeps
        self._store = store
        self._jobs = jobs
        self._announcer = announcer
        self._name = name
        self._every = every
        self._metrics = metrics or Metrics()
        self._held: set[str] = set()
        self._following: dict[str, set[str]] = {}  # job id -> held sweeps with it active
        self._reported: dict[str, int] = {}  # job id -> attempt whose end its trainer reported
        self._epochs: dict[str, int] = {}  # job id -> its epochs, for the followed jobs
        self._due: set[str] = set()  # sweeps to look at now
        self._woken = asyncio.Event()

    async def listen(self, nc: Client) -> None:
        """Hear of recorded job news from every scheduler, and of the trainers' endings."""
        await nc.subscribe(streams.RECORDED_SUBJECTS, cb=self._on_recorded)
        await nc.subscribe(streams.EVENTS_SUBJECTS, cb=self._on_report)

    async def _on_recorded(self, msg: Msg) -> None:
        job_id = msg.subject.rpartition(".")[2]
        for sweep_id in self._following.get(job_id, ()):
            self.wake(sweep_id)

    async def _on_report(self, msg: Msg) -> None:
        job_id = msg.subject.split(".")[2]  # tuner.events.JOB.RUN
        if job_id not in self._following:
            return  # decoded only for the jobs of the sweeps held here
        try:
            event = event_pb2.JobEvent.FromString(msg.data)
        except DecodeError:
            return
        kind = event.WhichOneof("kind")
        trained = kind == "progress" and 0 < event.progress.total_steps <= event.progress.step
        last = kind == "epoch_completed" and event.epoch_completed.epoch >= self._epochs.get(
            job_id, 1 << 30
        )  # a restored run reports its epochs, the last one too, without a training step
        freed = kind in ("succeeded", "failed") or trained or last
        if freed and event.attempt > self._reported.get(job_id, 0):
            self._reported[job_id] = event.attempt
            for sweep_id in self._following[job_id]:
                self.wake(sweep_id)

    def _busy(self, trial: Document) -> bool:
        """Active, and its trainer has not reported its end."""
        return active(trial) and trial["job_id"] not in self._reported

    def wake(self, sweep_id: str) -> None:
        """Look at the sweep now: claim it if no one drives it, then step it."""
        self._due.add(sweep_id)
        self._woken.set()

    async def run(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_round = loop.time()
        while not stopping.is_set():
            self._woken.clear()
            try:
                if loop.time() >= next_round:
                    next_round = loop.time() + self._every
                    await self.round()
                else:
                    await self.step_due()
            except Exception as error:
                if isinstance(error, PyMongoError):
                    log.warning("driving sweeps: database unavailable: %s", error)
                else:
                    log.exception("driving sweeps failed; trying again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), FAILED_PAUSE_SECONDS)
                next_round = loop.time()
                continue
            if self._woken.is_set():
                continue
            waiters = [asyncio.create_task(e.wait()) for e in (self._woken, stopping)]
            try:
                timeout = max(0.0, next_round - loop.time())
                await asyncio.wait(waiters, timeout=timeout, return_when="FIRST_COMPLETED")
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def round(self) -> None:
        """Renew every lease held, take over abandoned sweeps, step them all."""
        await self._announcer.retry()
        for doc in await self._sweeps.claimable(now()):
            self._held.add(doc["_id"])
        self._held |= self._due
        self._due.clear()
        for sweep_id in sorted(self._held):
            await self._claim_and_step(sweep_id)

    async def step_due(self) -> None:
        """Step the sweeps woken since the last look; a sweep not held yet is claimed first."""
        for sweep_id in sorted(self._due):
            self._due.discard(sweep_id)
            try:
                if sweep_id in self._held:
                    await self._step_held(sweep_id)
                else:
                    await self._claim_and_step(sweep_id)
            except Exception:
                self._due.add(sweep_id)  # looked at again in the round after the failure
                raise

    async def _claim_and_step(self, sweep_id: str) -> None:
        with self._timed("store"):
            claimed = await self._sweeps.claim(sweep_id, self._name, LEASE_SECONDS)
        if not claimed:
            self._drop(sweep_id)
            return
        self._held.add(sweep_id)
        await self._step_held(sweep_id)

    async def _step_held(self, sweep_id: str) -> None:
        if await self.step(sweep_id):
            self._drop(sweep_id)

    def _drop(self, sweep_id: str) -> None:
        self._held.discard(sweep_id)
        self._follow_jobs(sweep_id, [])

    def _follow_jobs(self, sweep_id: str, trials: list[Document]) -> None:
        """Hear of the jobs of the sweep's active trials, and of no other."""
        now_active = {t["job_id"] for t in trials if active(t)}
        for job_id in [j for j, held in self._following.items() if sweep_id in held]:
            if job_id in now_active:
                continue
            self._following[job_id].discard(sweep_id)
            if not self._following[job_id]:
                del self._following[job_id]
                self._reported.pop(job_id, None)
                self._epochs.pop(job_id, None)
        for trial in trials:
            if trial["job_id"] in now_active:
                self._following.setdefault(trial["job_id"], set()).add(sweep_id)
                self._epochs[trial["job_id"]] = int(trial["hyperparameters"]["epochs"])

    @contextlib.contextmanager
    def _timed(self, part: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self._metrics.sweep_step.labels(part).observe(time.perf_counter() - began)

    async def step(self, sweep_id: str) -> bool:
        """One look at a sweep, announced if it changed; True once it has ended."""
        with self._timed("store"):
            doc = await self._sweeps.get(sweep_id)
        if doc is None or states.sweep_of(doc) != states.SWEEP_RUNNING:
            return True
        spec = sweep_pb2.SweepSpec.FromString(doc["spec"])
        trials: list[Document] = doc["trials"]
        self._follow_jobs(sweep_id, trials)
        before = copy.deepcopy(trials)
        await self._follow(sweep_id, spec, trials)
        # Rounds that changed nothing write nothing, so watchers hear only of changes.
        changed = False
        if trials != before:
            with self._timed("store"):
                changed = await self._sweeps.set_trials(sweep_id, self._name, trials)
        changed = await self._launch(sweep_id, spec, doc["owner"], trials) or changed
        self._follow_jobs(sweep_id, trials)
        ended = len(trials) >= budget(spec) and not any(active(t) for t in trials)
        if ended:
            with self._timed("store"):
                finished = await self._sweeps.finish(sweep_id, states.SWEEP_SUCCEEDED)
            if finished:
                changed = True
                log.info("sweep %s finished: %d trials", sweep_id, len(trials))
        if changed:
            with self._timed("announce"):
                await self._announcer.changed(sweep_id)
        return ended

    async def _follow(
        self, sweep_id: str, spec: sweep_pb2.SweepSpec, trials: list[Document]
    ) -> None:
        """Refresh the running trials from their jobs, and prune the ones that lag."""
        with self._timed("store"):
            jobs = await self._store.get_many(t["job_id"] for t in trials if active(t))
        for trial in trials:
            job = jobs.get(trial["job_id"]) if active(trial) else None
            if job is None:
                continue
            reported = self._reported.get(trial["job_id"])
            if reported is not None and (
                states.of(job) not in states.ACTIVE or job["attempts"] > reported
            ):
                del self._reported[trial["job_id"]]  # recorded, or a later attempt runs
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
                with contextlib.suppress(Refused), self._timed("cancel"):
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
        """Start trials up to the parallelism and the budget, those of a look all submitted at
        once; True if any started."""
        launched = False
        while (free := self._free(spec, trials)) > 0:
            finished = [
                Finished(
                    hyperparameters_from(t["hyperparameters"]),
                    t["test_accuracy"] if succeeded(t) else None,
                )
                for t in trials
                if not active(t)
            ]
            pending = [hyperparameters_from(t["hyperparameters"]) for t in trials if active(t)]
            points: list[job_pb2.Hyperparameters] = []
            for _ in range(free):
                with self._timed("ask"):
                    number = len(trials) + len(points)
                    points.append(normalized(next_point(spec, number, finished, pending + points)))
            with self._timed("submit"):
                outcomes = await asyncio.gather(
                    *(self._jobs.submit(hp, owner) for hp in points), return_exceptions=True
                )
            added = 0
            for outcome in outcomes:
                if isinstance(outcome, Refused):
                    log.info("sweep %s waits to launch a trial: %s", sweep_id, outcome)
                elif not isinstance(outcome, BaseException):
                    if not await self._add_trial(sweep_id, trials, *outcome):
                        return launched  # cancelled, or driven elsewhere now
                    added += 1
                    launched = True
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(outcome, Refused):
                    raise outcome
            if added < len(points):
                return launched  # refused: tried again at the next look
        return launched

    def _free(self, spec: sweep_pb2.SweepSpec, trials: list[Document]) -> int:
        """How many trials may start now: the parallelism's free places, within the budget."""
        busy = sum(self._busy(t) for t in trials)
        return min(budget(spec) - len(trials), (spec.parallelism or 1) - busy)

    async def _add_trial(
        self, sweep_id: str, trials: list[Document], job: Document, duplicate: bool
    ) -> bool:
        """Store a submitted job as the sweep's next trial; False if the sweep took no more."""
        # Before the trial is stored: its job may end, and be told, at any moment now.
        self._following.setdefault(job["_id"], set()).add(sweep_id)
        self._epochs[job["_id"]] = int(job["hyperparameters"]["epochs"])
        trial = new_trial(
            len(trials) + 1, job, reused=duplicate and states.of(job) == states.SUCCEEDED
        )
        if job["result"]:
            trial["test_accuracy"] = job["result"]["test_accuracy"]
            trial["curve"] = [m["test_accuracy"] for m in job["history"]]
        with self._timed("store"):
            added = await self._sweeps.add_trial(sweep_id, self._name, trial)
        if not added:
            return False
        trials.append(trial)
        log.info(
            "sweep %s: trial %d is job %s%s",
            sweep_id, trial["number"], job["_id"], " (reused)" if trial["reused"] else "",
        )  # fmt: skip
        return True

    async def cancel(self, doc: Document) -> None:
        """Cancel a sweep's trials that are still queued or running for its owner."""
        for trial in doc["trials"]:
            job = await self._store.get(trial["job_id"])
            if job is not None and active(job) and job["owner"] == doc["owner"]:
                with contextlib.suppress(Refused):
                    await self._jobs.cancel(job, f"sweep {doc['_id']} cancelled")
