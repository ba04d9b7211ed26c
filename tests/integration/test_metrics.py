"""Prometheus metrics: scraped over HTTP from a real scheduler and trainer around a real job."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.hyperparameters import mlp
from tests.support.jobs import wait_for
from tests.support.processes import run_module
from tests.support.stack import RunningStack, start_stack
from tuner.client import TunerClient
from tuner.stack import free_port
from tuner.v1 import job_pb2

SUBMIT = "/tuner.v1.TunerService/SubmitJob"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """Every sample at http://127.0.0.1:port/metrics, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for one not exported yet (a labelled counter before its first use)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape_when_up(port: int, timeout: float = 60) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return scrape(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> Iterator[tuple[RunningStack, int, int]]:
    """A stack whose scheduler and trainer serve metrics, each on a port of its own."""
    scheduler_port, trainer_port = free_port(), free_port()
    running = start_stack(
        tmp_path_factory.mktemp("metrics"),
        data_dir,
        trainers=0,
        TUNER_METRICS_PORT=str(scheduler_port),
    )
    try:
        # The trainer reads the stack's environment as it starts: its own port, then.
        running.stack.env["TUNER_METRICS_PORT"] = str(trainer_port)
        running.stack.start_trainer(1)
        scrape_when_up(trainer_port)
        yield running, scheduler_port, trainer_port
    finally:
        running.stack.stop()


async def settled(
    port: int, name: str, at_least: float, timeout: float = 30, **labels: str
) -> Samples:
    """Scrape until `name{labels}` reaches `at_least` (what a job moves lands a moment after)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await asyncio.to_thread(scrape, port)
        if value(samples, name, **labels) >= at_least or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.2)


async def test_a_job_moves_the_scheduler_and_the_trainer_metrics(
    observed: tuple[RunningStack, int, int],
) -> None:
    running, scheduler_port, trainer_port = observed
    before, trainer_before = scrape(scheduler_port), scrape(trainer_port)
    async with TunerClient(running.address, "metrics") as client:
        submitted = await client.submit(mlp(seed=7007))
        assert not submitted.deduplicated
        await wait_for(client, submitted.job.id, job_pb2.JOB_STATE_SUCCEEDED)
        assert (await client.submit(mlp(seed=7007))).deduplicated
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.submit(mlp(seed=7007, epochs=0))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    after = await settled(
        scheduler_port,
        "tuner_events_recorded_total",
        1 + value(before, "tuner_events_recorded_total", kind="succeeded"),
        kind="succeeded",
    )
    trainer_after = await settled(
        trainer_port,
        "tuner_trainer_jobs_total",
        1 + value(trainer_before, "tuner_trainer_jobs_total", outcome="succeeded"),
        outcome="succeeded",
    )

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def trainer_moved(name: str, **labels: str) -> float:
        return value(trainer_after, name, **labels) - value(trainer_before, name, **labels)

    submissions = "tuner_submissions_total"
    assert moved(submissions, outcome="new", reason="") == 1
    assert moved(submissions, outcome="deduplicated", reason="") == 1
    assert moved(submissions, outcome="refused", reason="invalid") == 1
    # One epoch: started, the epoch, the success; progress is for watchers, not recorded.
    for kind in ("started", "epoch_completed", "succeeded"):
        assert moved("tuner_events_recorded_total", kind=kind) == 1, kind
    assert moved("tuner_events_recorded_total", kind="failed") == 0
    assert moved("tuner_event_recording_lag_seconds_count") == 3
    assert moved("tuner_rpc_duration_seconds_count", method=SUBMIT, code="OK") == 2
    assert moved("tuner_rpc_duration_seconds_count", method=SUBMIT, code="INVALID_ARGUMENT") == 1
    assert value(after, "tuner_watchers") >= 0
    assert ("tuner_trainers_connected", frozenset()) in after

    assert trainer_moved("tuner_trainer_jobs_total", outcome="succeeded") == 1
    assert trainer_moved("tuner_trainer_jobs_total", outcome="failed") == 0
    assert trainer_moved("tuner_trainer_job_duration_seconds_count") == 1
    for reason in ("diverged", "dataset_missing", "error"):
        assert trainer_moved("tuner_trainer_failures_total", reason=reason) == 0, reason
    assert value(trainer_after, "tuner_trainer_busy") == 0
    assert value(trainer_after, "tuner_trainer_images_per_second") > 100

    # The gauges are refreshed every few seconds: nothing queued or running once the job is done.
    names = [
        ("tuner_jobs", {"state": "QUEUED"}),
        ("tuner_jobs", {"state": "RUNNING"}),
        ("tuner_queue_pending_jobs", {}),
        ("tuner_queue_unacked_jobs", {}),
    ]
    deadline = time.monotonic() + 20
    while True:
        gauges = await asyncio.to_thread(scrape, scheduler_port)
        present = all((n, frozenset(labels.items())) in gauges for n, labels in names)
        if present and all(value(gauges, n, **labels) == 0 for n, labels in names):
            break
        assert time.monotonic() < deadline, {n: value(gauges, n, **labels) for n, labels in names}
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("service", ["scheduler", "trainer"])
def test_a_metrics_port_in_use_fails_the_start_in_one_line(service: str) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_module(service, {"TUNER_METRICS_PORT": str(port)})
    assert result.returncode != 0
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{service}: TUNER_METRICS_PORT: cannot serve metrics on port {port}")
    assert "Traceback" not in result.stderr
