"""The scheduler's Prometheus metrics, in a registry of its own, and the loop that refreshes
the gauges read from the database and JetStream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scheduler.outages import OUTAGES
from store.jobs import JobStore
from tuner.core import streams
from tuner.core.metrics import new_registry
from tuner.core.states import QUEUED, RUNNING, name

log = logging.getLogger(__name__)

# SecantusDB counts by reading every match: the gauge stops counting here.
COUNT_LIMIT = 10_000
REFRESH_SECONDS = 5.0
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """Every metric the scheduler exports, registered in `registry` (a new one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else new_registry()
        self.jobs = Gauge(
            "tuner_jobs",
            f"Jobs queued or running, counted up to {COUNT_LIMIT}",
            ["state"],
            registry=r,
        )
        self.submissions = Counter(
            "tuner_submissions",
            "Job submissions by outcome (new, deduplicated, refused) and refusal reason",
            ["outcome", "reason"],
            registry=r,
        )
        self.queue_pending = Gauge(
            "tuner_queue_pending_jobs", "Jobs in TUNER_JOBS no trainer has taken yet", registry=r
        )
        self.queue_unacked = Gauge(
            "tuner_queue_unacked_jobs",
            "Jobs trainers have taken and not yet acknowledged",
            registry=r,
        )
        self.queue_redelivered = Gauge(
            "tuner_queue_redelivered_jobs",
            "Unacknowledged jobs delivered more than once",
            registry=r,
        )
        self.events_recorded = Counter(
            "tuner_events_recorded", "Trainer reports recorded, by kind", ["kind"], registry=r
        )
        self.recording_lag = Histogram(
            "tuner_event_recording_lag_seconds",
            "From a trainer report's time to its recording",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.rpc_duration = Histogram(
            "tuner_rpc_duration_seconds",
            "gRPC calls by method and status code, and how long they took",
            ["method", "code"],
            registry=r,
        )
        self.watchers = Gauge(
            "tuner_watchers", "Calls watching a job or the event feed", registry=r
        )
        self.trainers = Gauge(
            "tuner_trainers_connected", "Trainers this scheduler knows to be alive", registry=r
        )
        self.sweep_step = Histogram(
            "tuner_sweep_step_seconds",
            "A sweep driver's work, by part: ask (the strategy), submit (a trial's job: its "
            "writes and its dispatch), store (the sweep's own reads and writes), announce",
            ["part"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        for outcome in ("new", "deduplicated"):
            self.submissions.labels(outcome, "")

    def submitted(self, outcome: str, reason: str = "") -> None:
        self.submissions.labels(outcome, reason).inc()

    def refused(self, reason: str) -> None:
        self.submissions.labels("refused", reason).inc()

    def count_watchers(self, count: Callable[[], int]) -> None:
        """Read the watchers when scraped."""
        self.watchers.set_function(lambda: float(count()))

    def count_trainers(self, count: Callable[[], int]) -> None:
        """Read the trainers when scraped (scheduler/trainers.py's registry, when present)."""
        self.trainers.set_function(lambda: float(count()))


class Refresher:
    """Every few seconds: jobs by state (bounded counts) and the job queue's consumer."""

    def __init__(
        self,
        metrics: Metrics,
        store: JobStore,
        js: JetStreamContext,
        interval: float = REFRESH_SECONDS,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._js = js
        self._interval = interval

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.refresh()
            except OUTAGES as error:  # the gauges keep their last values
                log.debug("metrics not refreshed: %r", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._interval)

    async def refresh(self) -> None:
        for state in (QUEUED, RUNNING):
            count = await self._store.count_in_state(state, COUNT_LIMIT)
            self._metrics.jobs.labels(name(state)).set(count)
        info = await self._js.consumer_info(streams.JOBS_STREAM, streams.TRAINERS_CONSUMER)
        self._metrics.queue_pending.set(info.num_pending or 0)
        self._metrics.queue_unacked.set(info.num_ack_pending or 0)
        self._metrics.queue_redelivered.set(info.num_redelivered or 0)
