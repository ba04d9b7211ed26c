"""For the dashboard's tests: fixed jobs and events, the offline app, small Pilot helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from textual.pilot import Pilot
from textual.widgets import Input, Select

from tui.app import TunerApp
from tui.clock import Clock, fixed
from tuner.client import TunerClient
from tuner.v1 import event_pb2, job_pb2

NOW = datetime(2026, 11, 27, 14, 30, 0, tzinfo=UTC)
ME = "alice"


def at(seconds_before_now: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(NOW - timedelta(seconds=seconds_before_now))
    return stamp


def seconds(value: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(int(value * 1e9))
    return duration


def epoch(n: int, train_loss: float, test_loss: float, accuracy: float) -> job_pb2.EpochMetrics:
    return job_pb2.EpochMetrics(
        epoch=n,
        train_loss=train_loss,
        test_loss=test_loss,
        test_accuracy=accuracy,
        training_duration=seconds(11.5 + n / 10),
        evaluation_duration=seconds(0.8),
    )


def job(
    number: int,
    params: job_pb2.Hyperparameters,
    state: job_pb2.JobState,
    *,
    owner: str = ME,
    accuracy: float = 0.0,
    training: float = 0.0,
    history: list[job_pb2.EpochMetrics] | None = None,
    started: float | None = None,
    error: str = "",
    updated: float = 300,
) -> job_pb2.Job:
    """A job with a fixed id (from `number`), created 5 minutes before NOW."""
    found = job_pb2.Job(
        id=f"{number:032x}",
        hyperparameters=params,
        state=state,
        owner=owner,
        attempts=0 if state == job_pb2.JOB_STATE_QUEUED else 1,
        run=1,
        trainer="" if state == job_pb2.JOB_STATE_QUEUED else "trainer-1",
        error=error,
        create_time=at(300),
        update_time=at(updated),
    )
    found.history.extend(history or [])
    if started is not None:
        found.start_time.CopyFrom(at(started))
    if state == job_pb2.JOB_STATE_SUCCEEDED:
        found.result.CopyFrom(
            job_pb2.Result(
                test_accuracy=accuracy,
                test_loss=0.08,
                training_duration=seconds(training),
                evaluation_duration=seconds(0.8),
                device="cpu",
            )
        )
        found.end_time.CopyFrom(at(10))
    return found


def state_changed(sequence: int, of: job_pb2.Job, seconds_ago: float) -> event_pb2.JobEvent:
    event = event_pb2.JobEvent(
        sequence=sequence,
        job_id=of.id,
        run=of.run,
        attempt=of.attempts,
        state_changed=event_pb2.StateChange(job=of),
    )
    event.time.CopyFrom(at(seconds_ago))
    return event


def progress(
    sequence: int, of: job_pb2.Job, step: int, total: int, loss: float, epoch: int = 1
) -> event_pb2.JobEvent:
    event = event_pb2.JobEvent(
        sequence=sequence,
        job_id=of.id,
        run=of.run,
        attempt=of.attempts,
        progress=job_pb2.Progress(
            epoch=epoch,
            total_epochs=of.hyperparameters.epochs,
            step=step,
            total_steps=total,
            loss=loss,
        ),
    )
    event.time.CopyFrom(at(1))
    return event


def offline_app(client: TunerClient, clock: Clock | None = None) -> TunerApp:
    """The dashboard at NOW (or on `clock`) that makes no call: its state is what the test feeds."""
    return TunerApp(client, clock=clock or fixed(NOW), live=False)


def still(pilot: Pilot[Any]) -> None:
    """No blinking cursor and no toasts: the picture depends on nothing but the state."""
    for field in pilot.app.query(Input):
        field.cursor_blink = False
    pilot.app.clear_notifications()


async def until(
    pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 30, what: str = ""
) -> None:
    """Lets the app run until `condition()` is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {what or condition}")
        await pilot.pause(0.1)


async def type_into(pilot: Pilot[Any], selector: str, text: str) -> None:
    """Focuses the field, selects its text and types over it, key by key."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    await pilot.pause()
    field.select_all()
    await pilot.press(*(text or ["backspace"]))


async def choose(pilot: Pilot[Any], selector: str, value: str) -> None:
    """Opens the select, types the option's name to find it, and picks it with Enter."""
    select = pilot.app.screen.query_one(selector, Select)
    select.focus()
    await pilot.pause()
    await pilot.press("enter")
    await until(pilot, lambda: select.expanded, timeout=5, what=f"{selector} open")
    await pilot.press(*value, "enter")
    await until(pilot, lambda: not select.expanded, timeout=5, what=f"{selector} closed")
    assert select.value == value, f"{selector} is {select.value!r}, not {value!r}"
