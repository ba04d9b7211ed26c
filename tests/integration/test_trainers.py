"""Trainers in view and nobody waiting silently: announcements, ListTrainers, `tuner status`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import nats

from tests.support.hyperparameters import mlp
from tests.support.jobs import wait_for
from tests.support.stack import RunningStack, StartStack
from tuner.client import TunerClient
from tuner.core import streams
from tuner.v1 import job_pb2, trainer_pb2

STARTUP_S = 90  # a trainer imports torch first: seconds on a busy machine


def cli(running: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TUNER_SERVER=running.address, TUNER_USER="ops")
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def listed(client: TunerClient) -> dict[str, trainer_pb2.TrainerStatus]:
    return {t.name: t for t in await client.list_trainers()}


async def until(
    what: str, check: Callable[[], Any], timeout: float = STARTUP_S, every: float = 0.2
) -> float:
    """Awaits `check()` until it is true; the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not {what} after {timeout} s")
        await asyncio.sleep(every)
    return time.monotonic() - started


async def test_trainers_come_and_go_with_what_they_train(own_stack: StartStack) -> None:
    running = own_stack(trainers=1)
    async with TunerClient(running.address, "alice") as client:

        async def first_here() -> bool:
            return "trainer-1" in await listed(client)

        await until("trainer-1 listed", first_here)
        one = (await listed(client))["trainer-1"]
        assert (one.device, one.job_id, one.jobs_done, one.goodbye) == ("cpu", "", 0, False)
        assert one.host and one.torch_threads >= 1
        assert one.HasField("start_time") and one.HasField("receive_time")
        shown = cli(running, "trainers", "--json")
        assert shown.returncode == 0, shown.stderr
        assert [t["name"] for t in json.loads(shown.stdout)["trainers"]] == ["trainer-1"]
        assert "trainer-1  cpu     idle" in cli(running, "trainers").stdout

        # Busy: the job and how far it is, then one job done.
        submitted = await client.submit(mlp(seed=4101, batch_size=128))
        assert submitted.trainers_connected == 1
        job_id = submitted.job.id

        async def training() -> bool:
            t = (await listed(client)).get("trainer-1")
            return t is not None and t.job_id == job_id and t.progress.step > 0

        await until("trainer-1 showing its job's progress", training, timeout=120)
        t = (await listed(client))["trainer-1"]
        assert t.run == 1 and t.progress.total_epochs == 1
        assert t.progress.total_steps >= t.progress.step > 0
        await wait_for(client, job_id, job_pb2.JOB_STATE_SUCCEEDED)

        async def done() -> bool:
            t = (await listed(client)).get("trainer-1")
            return t is not None and t.jobs_done == 1 and not t.job_id

        await until("trainer-1 idle after one job", done, timeout=10)

        # kill -9: nobody says goodbye; gone after the silence timeout, not before.
        second = running.stack.start_trainer(2, threads=1)

        async def both() -> bool:
            return set(await listed(client)) == {"trainer-1", "trainer-2"}

        await until("trainer-2 listed", both)
        second.send_signal(signal.SIGKILL)
        second.wait()
        assert "trainer-2" in await listed(client), "silence is not gone at once"

        async def second_gone() -> bool:
            return "trainer-2" not in await listed(client)

        took = await until("trainer-2 dropped", second_gone, timeout=30)
        silence = streams.TRAINER_SILENCE_SECONDS
        assert silence - streams.TRAINER_ANNOUNCE_SECONDS - 1 <= took <= silence + 2

        # SIGTERM: the goodbye drops it at once.
        first = running.stack.process("trainer-1")
        first.send_signal(signal.SIGTERM)

        async def first_gone() -> bool:
            return "trainer-1" not in await listed(client)

        took = await until("trainer-1 dropped on goodbye", first_gone, timeout=15, every=0.1)
        assert first.wait(15) == 0
        assert took < streams.TRAINER_SILENCE_SECONDS - 1, "the goodbye, not the silence"
        assert "trainer trainer-1 said goodbye" in running.log("scheduler")


def submit(running: RunningStack, seed: int, *more: str) -> subprocess.CompletedProcess[str]:
    args = ["submit", "--epochs", "1", "--lr", "0.01", "--batch-size", "256", "--model", "mlp"]
    return cli(running, *args, "--seed", str(seed), *more)


async def test_with_no_trainer_a_submission_warns_and_status_tells_what_is_down(
    own_stack: StartStack,
) -> None:
    running = own_stack(trainers=0)
    done = submit(running, 4201)
    assert done.returncode == 0, done.stderr
    assert "QUEUED" in done.stdout
    assert "warning: no trainer is connected" in done.stderr
    assert json.loads(cli(running, "trainers", "--json").stdout) == {}

    assert "warning: no trainer is connected" in submit(running, 4202, "--json").stderr

    # A malformed announcement is dropped in a line and the scheduler goes on.
    nc = await nats.connect(running.nats_url)
    try:
        await nc.publish("tuner.trainers.x", b"\xff\xfe not a TrainerStatus")
        await nc.publish("tuner.trainers.y", b"\x0a")
        await nc.flush()
    finally:
        await nc.close()

    def dropped() -> bool:
        return "dropped a malformed trainer announcement on tuner.trainers" in running.log(
            "scheduler"
        )

    deadline = time.monotonic() + 10
    while not dropped() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert dropped()

    healthy = cli(running, "status", "--json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    status = json.loads(healthy.stdout)
    assert status["ok"] is True
    assert status["scheduler"]["health"] == "SERVING"
    assert {c["name"]: c["reachable"] for c in status["components"]} == {
        "database": True,
        "nats": True,
        "jetstream": True,
    }
    assert status["trainers"] == []
    counts = {c["state"]: int(c["count"]) for c in status["jobs"]}
    assert counts == {"JOB_STATE_QUEUED": 2, "JOB_STATE_RUNNING": 0}
    assert int(status["jobs_stream"]["messages"]) == 2
    assert int(status["trainers_consumer"]["pending"]) == 2
    assert status["scheduler_consumer"]["name"] == "scheduler"
    text = cli(running, "status")
    assert text.returncode == 0
    assert text.stdout.splitlines()[0].startswith("scheduler   ok    SERVING at ")

    running.stack.process("secantusdb").terminate()
    running.stack.process("secantusdb").wait(10)
    down = cli(running, "status", "--json")
    assert down.returncode == 1, down.stdout + down.stderr
    status = json.loads(down.stdout)
    assert status["ok"] is False
    database = next(c for c in status["components"] if c["name"] == "database")
    assert database["reachable"] is False and "unreachable" in database["detail"]
    assert all(c["reachable"] for c in status["components"] if c["name"] != "database")
    assert "database    DOWN" in cli(running, "status").stdout

    running.stack.process("nats").terminate()
    running.stack.process("nats").wait(10)
    down = cli(running, "status", "--json")
    assert down.returncode == 1, down.stdout + down.stderr
    reachable = {c["name"]: c["reachable"] for c in json.loads(down.stdout)["components"]}
    assert reachable == {"database": False, "nats": False, "jetstream": False}

    running.stack.process("scheduler").terminate()
    running.stack.process("scheduler").wait(20)
    gone = cli(running, "status")
    assert gone.returncode == 1
    assert "unreachable at" in gone.stdout
    gone = cli(running, "status", "--json")
    assert gone.returncode == 1
    assert json.loads(gone.stdout)["scheduler"]["health"] == "UNREACHABLE"
