"""The dashboard driven by Pilot against a real stack: nats-server, SecantusDB, scheduler, trainer.

Seeds 3000-3999 are this file's: jobs are deduplicated across the whole session's stack.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Button, Label, ListView, Static

from tests.support.dashboard import choose, type_into, until
from tests.support.hyperparameters import mlp
from tests.support.stack import RunningStack
from tui import formatting
from tui.app import TunerApp
from tui.messages import EventReceived, JobSubmitted, ProgressReceived
from tui.screens.detail import JobDetailScreen
from tui.widgets.job_summary import rows
from tui.widgets.leaderboard import Leaderboard
from tui.widgets.message_board import MessageBoard
from tui.widgets.running import RunningJobs
from tui.widgets.status import ConnectionStatus
from tuner.client import TunerClient
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.stack import free_port, wait_until_serving
from tuner.v1 import job_pb2

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED


def id_of(hp: job_pb2.Hyperparameters) -> str:
    return job_id(canonical_key(normalized(hp)))


async def fill_form(pilot: Pilot[Any], seed: int) -> None:
    """Types an MLP, 1 epoch, batch 64, Adam, lr 0.001 configuration with this seed."""
    await type_into(pilot, "#epochs", "1")
    await type_into(pilot, "#learning_rate", "0.001")
    await type_into(pilot, "#batch_size", "64")
    await choose(pilot, "#model", "mlp")
    await choose(pilot, "#optimizer", "adam")
    await type_into(pilot, "#seed", str(seed))


def board_lines(app: TunerApp) -> list[str]:
    return [entry.text for entry in app.screen.query_one(MessageBoard).entries]


def toasts(app: TunerApp) -> list[tuple[str, str]]:
    return [(n.title, n.message) for n in app._notifications]


async def test_submit_watch_finish_and_duplicate(running_stack: RunningStack) -> None:
    hp = mlp(3001)
    jid = id_of(hp)
    described = formatting.short(normalized(hp))
    async with TunerClient(running_stack.address, "tui-live") as client:
        app = TunerApp(client)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            running = screen.query_one(RunningJobs)
            await until(pilot, lambda: screen.query_one(ConnectionStatus).is_online, what="online")

            # What the running row showed each time the screen handled a message.
            seen: list[tuple[str, int, float]] = []

            def record(message: Message) -> None:
                if isinstance(message, ProgressReceived | EventReceived | JobSubmitted):
                    row = running.row(jid)
                    if row is not None:
                        seen.append((type(message).__name__, row.job.state, row.fraction))

            screen.message_signal.subscribe(screen, record, immediate=True)

            await fill_form(pilot, 3001)
            await pilot.press("enter")

            await until(
                pilot,
                lambda: jid in [j.id for j in screen.query_one(Leaderboard).jobs],
                timeout=180,
                what="the job on the leaderboard",
            )
            finished = await client.get(jid)
            assert finished.state == SUCCEEDED
            accuracy = formatting.percent(finished.result.test_accuracy)

            # The row appeared, advanced while running, and went once the job ended.
            assert seen, "the running row never appeared"
            fractions = [
                f
                for kind, state, f in seen
                if kind == "ProgressReceived" and state == job_pb2.JOB_STATE_RUNNING
            ]
            print("running row, message by message:", seen)
            assert len(set(fractions)) >= 2, f"the row did not advance: {seen}"
            assert fractions == sorted(fractions)
            await until(pilot, lambda: running.row(jid) is None, what="the row removed")

            # The message board and the toast say so.
            await until(
                pilot,
                lambda: any(
                    line.startswith(f"finished: accuracy {accuracy}") and described in line
                    for line in board_lines(app)
                ),
                what="finished on the board",
            )
            assert any(
                line.startswith("submitted") and described in line for line in board_lines(app)
            )
            assert any(
                line.startswith("started") and described in line for line in board_lines(app)
            )
            await until(
                pilot,
                lambda: any(
                    title == "Job finished" and accuracy in message and "s=3001" in message
                    for title, message in toasts(app)
                ),
                what="the toast",
            )

            # The same configuration again: answered at once with its accuracy.
            screen.query_one("#seed").focus()
            await pilot.press("enter")
            await until(
                pilot,
                lambda: any(
                    line.startswith(f"already exists: accuracy {accuracy}") and described in line
                    for line in board_lines(app)
                ),
                what="already exists on the board",
            )
            assert running.row(jid) is None


async def test_cancel_my_running_job_from_its_detail(running_stack: RunningStack) -> None:
    """A CNN takes minutes here: open it from its running row and cancel it."""
    hp = mlp(3021)
    hp.model = job_pb2.MODEL_CNN
    jid = id_of(hp)
    async with TunerClient(running_stack.address, "tui-cancel") as client:
        app = TunerApp(client)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            running = screen.query_one(RunningJobs)
            await until(pilot, lambda: screen.query_one(ConnectionStatus).is_online, what="online")
            await fill_form(pilot, 3021)
            await choose(pilot, "#model", "cnn")
            screen.query_one("#seed").focus()
            await pilot.press("enter")
            await until(pilot, lambda: running.row(jid) is not None, what="the running row")

            running.query_one(ListView).focus()
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, JobDetailScreen), what="detail")
            detail = app.screen
            assert isinstance(detail, JobDetailScreen)
            assert detail.job.id == jid
            await until(
                pilot, lambda: detail.job.state == job_pb2.JOB_STATE_RUNNING, what="running"
            )
            assert detail.check_action("cancel_job", ())
            await pilot.press("c")
            await until(
                pilot, lambda: detail.job.state == job_pb2.JOB_STATE_CANCELLED, what="cancelled"
            )
            assert ("error", "cancelled by tui-cancel") in rows(detail.job, None)
            assert " · cancelled · " in str(detail.query_one("#detail-title", Label).render())
            assert not detail.check_action("cancel_job", ())
            assert any(title == "Job cancelled" for title, _ in toasts(app))

            await pilot.press("escape")
            await until(pilot, lambda: running.row(jid) is None, what="the row removed")
            await until(
                pilot,
                lambda: any(
                    line.startswith("cancelled: cancelled by tui-cancel")
                    for line in board_lines(app)
                ),
                what="on the board",
            )
        assert (await client.get(jid)).state == job_pb2.JOB_STATE_CANCELLED
    # The trainer stopped it too, so the next test's job does not wait behind a CNN.
    deadline = time.monotonic() + 60
    while f"job {jid} run 1: stopped" not in running_stack.log("trainer-1"):
        assert time.monotonic() < deadline, "the trainer did not stop the cancelled job"
        await asyncio.sleep(0.2)


async def test_invalid_values_send_nothing(running_stack: RunningStack) -> None:
    async with TunerClient(running_stack.address, "tui-invalid") as client:
        app = TunerApp(client)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            await until(pilot, lambda: screen.query_one(ConnectionStatus).is_online, what="online")
            await fill_form(pilot, 3002)
            submit = screen.query_one("#submit", Button)
            assert not submit.disabled

            await type_into(pilot, "#epochs", "0")
            error = screen.query_one("#field-epochs .field-error", Static)
            assert "must be between 1 and 100, got 0" in str(error.render())
            assert submit.disabled
            await pilot.press("enter")
            await pilot.click("#submit")

            await type_into(pilot, "#epochs", "1")
            await type_into(pilot, "#learning_rate", "abc")
            error = screen.query_one("#field-learning_rate .field-error", Static)
            assert "must be a number, got 'abc'" in str(error.render())
            assert submit.disabled
            await pilot.press("enter")
            await pilot.pause(1)
            assert board_lines(app) == []

        # Nothing reached the scheduler: this user has no job, and the seed's job is unknown.
        assert list((await client.list()).jobs) == []
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.find(mlp(3002))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


class OwnScheduler:
    """A second scheduler on the session's NATS and database that a test may stop and start."""

    def __init__(self, stack: RunningStack, log: Path) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self._env = dict(stack.stack.env, TUNER_LISTEN=self.address)
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self._log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scheduler"],
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_until_serving(self.address, self.process)

    def stop(self) -> None:
        """Stops it as an operator would; it waits out its grace period for open streams."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.mark.slow
async def test_reconnects_and_resumes_after_the_last_event(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    """The scheduler goes away: it says so, keeps what it shows, comes back and loses nothing."""
    during = mlp(3012)
    scheduler = OwnScheduler(running_stack, tmp_path / "scheduler.log")
    await asyncio.to_thread(scheduler.start)
    try:
        async with TunerClient(scheduler.address, "tui-reconnect") as client:
            app = TunerApp(client)
            async with app.run_test(size=(120, 40)) as pilot:
                screen = app.screen
                status = screen.query_one(ConnectionStatus)
                leaderboard = screen.query_one(Leaderboard)
                await until(pilot, lambda: status.is_online, what="online")
                await fill_form(pilot, 3011)
                await pilot.press("enter")
                await until(
                    pilot,
                    lambda: id_of(mlp(3011)) in [j.id for j in leaderboard.jobs],
                    timeout=180,
                    what="the first job on the leaderboard",
                )
                lines_before = board_lines(app)
                leaders_before = leaderboard.jobs

                await asyncio.to_thread(scheduler.stop)
                await until(pilot, lambda: status.has_class("-offline"), what="offline")
                assert any(title == "Connection lost" for title, _ in toasts(app))
                assert board_lines(app) == lines_before  # what it showed stays
                assert leaderboard.jobs == leaders_before

                # While it is away, the same user's job runs through the session's scheduler.
                async with TunerClient(running_stack.address, "tui-reconnect") as other:
                    job = (await other.submit(during)).job
                    while job.state != SUCCEEDED:
                        await asyncio.sleep(0.2)
                        job = await other.get(job.id)

                await asyncio.to_thread(scheduler.start)
                await until(pilot, lambda: status.is_online, timeout=90, what="online again")
                assert any(title == "Reconnected" for title, _ in toasts(app))

                # The outage's events arrive, each once, after those seen before it.
                described = formatting.short(normalized(during))
                await until(
                    pilot,
                    lambda: any(
                        line.startswith("finished") and described in line
                        for line in board_lines(app)
                    ),
                    what="the outage's job finished",
                )
                lines = board_lines(app)
                assert any(line.startswith("submitted") and described in line for line in lines)
                assert len(lines) == len(set(lines)), lines
                await until(
                    pilot,
                    lambda: id_of(during) in [j.id for j in leaderboard.jobs],
                    what="the outage's job on the leaderboard",
                )
    finally:
        await asyncio.to_thread(scheduler.stop)
