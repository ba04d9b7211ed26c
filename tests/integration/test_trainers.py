"""Trainers in view and nobody waiting silently: announcements, warm-up, `tuner up`, status."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from tests.support.hyperparameters import mlp
from tests.support.jobs import wait_for
from tests.support.processes import without_tuner_settings
from tests.support.servers import listening
from tests.support.stack import RunningStack, StartStack
from tuner.client import TunerClient
from tuner.core import streams
from tuner.stack import executable, free_port
from tuner.up import wait_until_ready
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


@pytest.mark.slow  # kills trainers and waits out their silence: make test-slow
async def test_trainers_come_and_go_with_what_they_train(own_stack: StartStack) -> None:
    running = own_stack(trainers=1)
    async with TunerClient(running.address, "alice") as client:

        async def first_here() -> bool:
            return "trainer-1" in await listed(client)

        async def first_ready() -> bool:
            found = await listed(client)
            return "trainer-1" in found and found["trainer-1"].ready

        await until("trainer-1 listed", first_here)
        await until("trainer-1 ready", first_ready)
        one = (await listed(client))["trainer-1"]
        assert (one.device, one.job_id, one.jobs_done, one.goodbye) == ("cpu", "", 0, False)
        assert one.host and one.torch_threads >= 1
        assert one.HasField("start_time") and one.HasField("receive_time")
        shown = cli(running, "trainers", "--json")
        assert shown.returncode == 0, shown.stderr
        [as_json] = json.loads(shown.stdout)["trainers"]
        assert (as_json["name"], as_json["ready"]) == ("trainer-1", True)
        assert "trainer-1  cpu     idle" in cli(running, "trainers").stdout

        # Busy: the job and how far it is, then one job done.
        # Three epochs: warm, one takes ~2 s here, and the trainer announces every 2 s.
        submitted = await client.submit(mlp(seed=4101, batch_size=128, epochs=3))
        assert submitted.trainers_connected == 1
        job_id = submitted.job.id

        async def training() -> bool:
            t = (await listed(client)).get("trainer-1")
            return t is not None and t.job_id == job_id and t.progress.step > 0

        await until("trainer-1 showing its job's progress", training, timeout=120)
        t = (await listed(client))["trainer-1"]
        assert t.run == 1 and t.progress.total_epochs == 3
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


def lines_with(log: str, *texts: str) -> list[int]:
    """The number of the first line holding each text, in the order given (-1: none does)."""
    lines = log.splitlines()
    return [next((i for i, line in enumerate(lines) if text in line), -1) for text in texts]


async def test_a_trainer_warms_up_and_says_ready_before_it_takes_a_job(
    own_stack: StartStack,
) -> None:
    """A job queued before the trainer starts is taken only once mnist is in memory."""
    running = own_stack(trainers=0)
    nc = await nats.connect(running.nats_url)
    try:
        async with (
            TunerClient(running.address, "alice") as client,
            listening(nc, streams.trainer_subject("trainer-1")) as heard,
        ):
            job_id = (await client.submit(mlp(seed=4111, batch_size=256))).job.id
            running.stack.start_trainer(1, threads=1)
            announced: list[trainer_pb2.TrainerStatus] = []
            while not announced or not announced[-1].job_id:
                msg = await asyncio.wait_for(heard.get(), STARTUP_S)
                announced.append(trainer_pb2.TrainerStatus.FromString(msg.data))
            await wait_for(client, job_id, job_pb2.JOB_STATE_SUCCEEDED)
    finally:
        await nc.close()

    readiness = [a.ready for a in announced]
    assert readiness[0] is False, "announced from the start, warming up"
    assert readiness == sorted(readiness), "never ready again before it is"
    assert [a.job_id for a in announced if not a.ready] == [""] * readiness.count(False)
    assert announced[-1].ready and announced[-1].job_id == job_id

    log = running.log("trainer-1")
    warming, loaded, ready, training = lines_with(
        log,
        "trainer trainer-1 on cpu: warming up",
        "mnist loaded onto cpu in ",
        "trainer trainer-1 ready on cpu (warmed mnist in ",
        f"job {job_id} run 1 attempt 1: training",
    )
    assert -1 < warming < loaded < ready < training, log
    assert log.count("mnist loaded onto cpu") == 1, "the job used the warm data"
    print(log.splitlines()[ready])


@pytest.mark.slow
async def test_a_trainer_stopped_while_warming_up_stops_at_once(own_stack: StartStack) -> None:
    running = own_stack(trainers=0, TUNER_WARM_DATASETS="mnist,fashion-mnist")
    nc = await nats.connect(running.nats_url)
    try:
        async with listening(nc, streams.trainer_subject("trainer-1")) as heard:
            trainer = running.stack.start_trainer(1, threads=1)
            first = trainer_pb2.TrainerStatus.FromString(
                (await asyncio.wait_for(heard.get(), STARTUP_S)).data
            )
            trainer.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            assert await asyncio.to_thread(trainer.wait, 15) == 0
            took = time.monotonic() - signalled
            last = first
            while not last.goodbye:
                last = trainer_pb2.TrainerStatus.FromString(
                    (await asyncio.wait_for(heard.get(), 5)).data
                )
    finally:
        await nc.close()
    assert not first.ready and not last.ready
    log = running.log("trainer-1")
    assert "trainer trainer-1 stopped" in log
    assert "ready on" not in log, "stopped before it was warm: no job loop started"
    assert took < 10, f"{took:.1f} s to stop"


def wait_for_text(path: Path, text: str, timeout: float = STARTUP_S) -> str:
    deadline = time.monotonic() + timeout
    while text not in (written := path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{text!r} not in {written!r}"
        time.sleep(0.1)
    return written


@pytest.mark.slow
def test_tuner_up_says_ready_only_once_its_trainer_is(tmp_path: Path, data_dir: Path) -> None:
    env = {**without_tuner_settings(), "TUNER_DATA_DIR": str(data_dir), "TUNER_DEVICE": "cpu"}
    port = free_port()
    state = tmp_path / "state"
    args = [executable("tuner"), "up", "--no-tui", "--trainers", "1", "--port", str(port)]
    args += ["--state-dir", str(state)]
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as out:
        up = subprocess.Popen(args, env=env, stderr=out, stdout=subprocess.DEVNULL)
    try:
        wait_for_text(stderr, "tuner: ready: ")
        # Read only now: the trainer said so in its log before it announced itself ready.
        trainer_log = (state / "logs" / "trainer-1.log").read_text()
        assert "trainer trainer-1 ready on cpu (warmed mnist in " in trainer_log
        lines = wait_for_text(stderr, "stop:    Ctrl-C").splitlines()
        waiting = lines.index("tuner: waiting for 1 trainer(s) to warm up")
        ready = next(i for i, line in enumerate(lines) if line.startswith("tuner: ready: "))
        assert waiting < ready
        assert re.fullmatch(
            rf"tuner: ready: scheduler on 127\.0\.0\.1:{port}, 1 trainer\(s\) ready in \d+\.\d s",
            lines[ready],
        ), lines[ready]
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()


async def test_waiting_for_trainers_gives_up_naming_them_and_their_logs(
    own_stack: StartStack,
) -> None:
    running = own_stack(trainers=0)
    log_path = running.stack.log_path
    async with TunerClient(running.address, "ops") as client:
        await wait_until_ready(client, [], log_path, timeout=0)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as raised:
            await wait_until_ready(client, ["trainer-1", "trainer-2"], log_path, timeout=1)
        assert 1 <= time.monotonic() - started < 5
        assert str(raised.value) == (
            f"not ready after 1 s: trainer-1 (log {log_path('trainer-1')}), "
            f"trainer-2 (log {log_path('trainer-2')})"
        )
        with pytest.raises(RuntimeError) as crashed:
            await wait_until_ready(
                client, ["trainer-1"], log_path, given_up=lambda: ["trainer-1"], timeout=60
            )
        assert str(crashed.value) == (
            f"trainer-1 (log {log_path('trainer-1')}) kept crashing before it was ready"
        )


def submit(running: RunningStack, seed: int, *more: str) -> subprocess.CompletedProcess[str]:
    args = ["submit", "--epochs", "1", "--lr", "0.01", "--batch-size", "256", "--model", "mlp"]
    return cli(running, *args, "--seed", str(seed), *more)


@pytest.mark.slow
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
