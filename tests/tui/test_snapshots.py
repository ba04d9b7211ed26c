"""Pictures of the dashboard and the job detail in a fixed state, at fixed terminal sizes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from tests.support.dashboard import epoch, job, offline_app, progress, state_changed, still
from tests.support.hyperparameters import mlp
from tui.messages import (
    ActiveJobsLoaded,
    Connected,
    ConnectionLost,
    JobSubmitted,
    LeaderboardLoaded,
    OpenJob,
    event_message,
)
from tuner.client import TunerClient
from tuner.v1 import job_pb2, tuner_service_pb2

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
RUNNING = job_pb2.JOB_STATE_RUNNING
QUEUED = job_pb2.JOB_STATE_QUEUED
FAILED = job_pb2.JOB_STATE_FAILED

SnapCompare = Callable[..., bool]

LEADERS = [
    job(
        11,
        mlp(11, epochs=5, model=job_pb2.MODEL_CNN),
        SUCCEEDED,
        accuracy=0.9921,
        training=312.4,
        owner="bob",
    ),
    job(
        12,
        mlp(12, epochs=3, model=job_pb2.MODEL_CNN, batch_size=128),
        SUCCEEDED,
        accuracy=0.9893,
        training=171.0,
    ),
    job(
        13,
        mlp(13, epochs=3, learning_rate=0.01, optimizer=job_pb2.OPTIMIZER_SGD),
        SUCCEEDED,
        accuracy=0.9712,
        training=38.2,
        owner="carol",
    ),
    job(14, mlp(14, epochs=2), SUCCEEDED, accuracy=0.9655, training=21.7),
    job(
        15,
        mlp(
            15,
            dataset=job_pb2.DATASET_FASHION_MNIST,
            optimizer=job_pb2.OPTIMIZER_ADADELTA,
            learning_rate=1.0,
        ),
        SUCCEEDED,
        accuracy=0.8612,
        training=12.9,
        owner="bob",
    ),
]
RUNNING_JOB = job(
    21,
    mlp(3101, epochs=3, batch_size=32),
    RUNNING,
    started=42,
    history=[epoch(1, 0.412, 0.198, 0.9421)],
)
QUEUED_JOB = job(22, mlp(3102, learning_rate=0.0005), QUEUED)


def dashboard_state(pilot: Pilot[object]) -> None:
    """What the dashboard shows after its first load and a few events."""
    screen = pilot.app.screen
    screen.post_message(Connected())
    screen.post_message(ActiveJobsLoaded([RUNNING_JOB, QUEUED_JOB]))
    screen.post_message(LeaderboardLoaded(LEADERS))
    failed = job(
        31,
        mlp(31, learning_rate=9.5, optimizer=job_pb2.OPTIMIZER_SGD),
        FAILED,
        owner="carol",
        error="loss became NaN in epoch 1",
    )
    events = [
        state_changed(101, job(11, mlp(11), QUEUED, owner="bob"), 290),
        state_changed(102, LEADERS[3], 200),
        state_changed(103, failed, 120),
        state_changed(104, RUNNING_JOB, 42),
        progress(105, RUNNING_JOB, step=2600, total=5625, loss=0.2871, epoch=2),
    ]
    for event in events:
        screen.post_message(event_message(event))
    duplicate = tuner_service_pb2.SubmitJobResponse(job=LEADERS[1], deduplicated=True)
    screen.post_message(JobSubmitted(duplicate))


async def settle(pilot: Pilot[object]) -> None:
    await pilot.pause()
    await pilot.pause()
    still(pilot)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 44)], ids=["80x24", "160x44"])
def test_dashboard(
    snap_compare: SnapCompare, offline_client: TunerClient, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot[object]) -> None:
        dashboard_state(pilot)
        await settle(pilot)

    assert snap_compare(offline_app(offline_client), terminal_size=size, run_before=run_before)


def test_dashboard_offline(snap_compare: SnapCompare, offline_client: TunerClient) -> None:
    """After losing the scheduler it says so and keeps showing what it had."""

    async def run_before(pilot: Pilot[object]) -> None:
        dashboard_state(pilot)
        await pilot.pause()
        pilot.app.screen.post_message(ConnectionLost("unavailable", 4))
        await settle(pilot)

    assert snap_compare(offline_app(offline_client), terminal_size=(100, 30), run_before=run_before)


def test_invalid_form(snap_compare: SnapCompare, offline_client: TunerClient) -> None:
    async def run_before(pilot: Pilot[object]) -> None:
        await pilot.pause()
        pilot.app.screen.query_one("#epochs").focus()
        await pilot.press("backspace", "0")
        pilot.app.screen.query_one("#learning_rate").focus()
        await pilot.press("backspace", "a", "b", "c")
        await settle(pilot)

    assert snap_compare(offline_app(offline_client), terminal_size=(80, 24), run_before=run_before)


FINISHED = job(
    41,
    mlp(3141, epochs=4, model=job_pb2.MODEL_CNN, batch_size=128),
    SUCCEEDED,
    accuracy=0.9902,
    training=196.4,
    started=260,
    history=[
        epoch(1, 0.3412, 0.0921, 0.9712),
        epoch(2, 0.0911, 0.0602, 0.9811),
        epoch(3, 0.0623, 0.0411, 0.9874),
        epoch(4, 0.0455, 0.0398, 0.9902),
    ],
)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_job_detail(
    snap_compare: SnapCompare, offline_client: TunerClient, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot[object]) -> None:
        pilot.app.post_message(OpenJob(FINISHED))
        await settle(pilot)

    assert snap_compare(offline_app(offline_client), terminal_size=size, run_before=run_before)


def test_running_job_detail(snap_compare: SnapCompare, offline_client: TunerClient) -> None:
    """My running job: live progress under the chart, and the cancel key in the footer."""

    async def run_before(pilot: Pilot[object]) -> None:
        pilot.app.post_message(OpenJob(RUNNING_JOB))
        await pilot.pause()
        pilot.app.screen.post_message(
            event_message(progress(200, RUNNING_JOB, step=2600, total=5625, loss=0.2871, epoch=2))
        )
        await settle(pilot)

    assert snap_compare(offline_app(offline_client), terminal_size=(100, 30), run_before=run_before)
