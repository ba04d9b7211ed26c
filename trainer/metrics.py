"""The trainer's Prometheus metrics, in a registry of its own."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tuner.core.metrics import new_registry

# From a one-epoch MLP (seconds) to a long CNN run (hours).
DURATION_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
OUTCOMES = ("succeeded", "failed", "cancelled", "handed_back")
FAILURES = ("diverged", "dataset_missing", "error")


class Metrics:
    """Every metric a trainer exports, registered in `registry` (a new one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else new_registry()
        self.busy = Gauge("tuner_trainer_busy", "1 while the trainer has a job, else 0", registry=r)
        self.job_duration = Histogram(
            "tuner_trainer_job_duration_seconds",
            "Jobs from taken to ended, whatever the outcome",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.images_per_second = Gauge(
            "tuner_trainer_images_per_second",
            "Training images per second of the last job trained to its end",
            registry=r,
        )
        self.jobs = Counter(
            "tuner_trainer_jobs",
            "Jobs ended, by outcome: succeeded, failed, cancelled, handed_back",
            ["outcome"],
            registry=r,
        )
        self.failures = Counter(
            "tuner_trainer_failures",
            "Failed jobs by reason: diverged, dataset_missing, error",
            ["reason"],
            registry=r,
        )
        for outcome in OUTCOMES:
            self.jobs.labels(outcome)
        for reason in FAILURES:
            self.failures.labels(reason)

    def started(self) -> float:
        """A job is taken: busy, and its start for the duration."""
        self.busy.set(1)
        return time.monotonic()

    def ended(self, started: float, outcome: str, failure: str = "") -> None:
        self.job_duration.observe(time.monotonic() - started)
        self.jobs.labels(outcome).inc()
        if failure:
            self.failures.labels(failure).inc()

    def trained(self, images: int, seconds: float) -> None:
        if seconds > 0:
            self.images_per_second.set(images / seconds)
