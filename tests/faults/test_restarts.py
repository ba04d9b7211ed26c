"""A supervised stack (`tuner up`): each kind of process killed with -9 comes back, its data kept.

The times from the kill to serving again are printed (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import grpc
import pymongo
import pytest

from tests.support.hyperparameters import mlp
from tests.support.jobs import wait_for
from tests.support.processes import without_tuner_settings
from tests.support.stack import RunningStack, StartStack
from tuner.client import TunerClient
from tuner.stack import LOOPBACK, Stack, executable, free_port, wait_until_serving
from tuner.v1 import job_pb2

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
RUNNING = job_pb2.JOB_STATE_RUNNING
TIME = r"\d\d:\d\d:\d\d"
RESTARTED = rf"exited with {{code}} at {TIME}; restarted at {TIME} \({{n}} in the last 60 s\)"


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def kill(running: RunningStack, name: str) -> tuple[subprocess.Popen[bytes], float]:
    """Kills `name` with SIGKILL; returns the dead process and when it was killed."""
    process = running.stack.process(name)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process, time.monotonic()


def restarted(
    running: RunningStack, name: str, dead: subprocess.Popen[bytes]
) -> subprocess.Popen[bytes]:
    """The process that replaces `dead`, once the supervisor has started it."""
    deadline = time.monotonic() + 30
    while (process := running.stack.process(name)) is dead:
        assert time.monotonic() < deadline, f"{name} was not restarted"
        time.sleep(0.02)
    return process


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.02)


def wait_for_mongo(uri: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            mongo: pymongo.MongoClient[dict[str, object]]
            with pymongo.MongoClient(uri, serverSelectionTimeoutMS=500) as mongo:
                mongo.admin.command("ping")
                return
        except pymongo.errors.PyMongoError:
            assert time.monotonic() < deadline, "the database does not answer"
            time.sleep(0.02)


async def on_leaderboard(client: TunerClient, job_id: str, timeout: float = 60) -> float:
    """Waits until the scheduler answers with `job_id` on its leaderboard; returns when."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if job_id in [job.id for job in await client.leaderboard(50)]:
                return time.monotonic()
        except grpc.aio.AioRpcError:
            pass
        assert time.monotonic() < deadline, f"job {job_id} is not on the leaderboard"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_every_kind_killed_comes_back_on_its_port_with_its_data(
    own_stack: StartStack,
) -> None:
    running = own_stack(trainers=1, db_in_memory=False)
    notices: list[str] = []
    running.stack.supervise(notices.append)
    times: dict[str, float] = {}
    async with TunerClient(running.address, "alice") as client:
        first = (await client.submit(mlp(seed=3001, batch_size=256))).job
        await wait_for(client, first.id, SUCCEEDED, timeout=120)

        # A trainer: a job queued while it is down runs once it is back.
        dead, killed = kill(running, "trainer-1")
        queued = (await client.submit(mlp(seed=3002, batch_size=256))).job
        restarted(running, "trainer-1", dead)
        await wait_for(client, queued.id, RUNNING, SUCCEEDED, timeout=120)
        times["trainer (kill -> it takes a job)"] = time.monotonic() - killed
        await wait_for(client, queued.id, SUCCEEDED, timeout=120)

        # NATS, with jobs in its queue: back on its port with its stream, none lost.
        jobs = [(await client.submit(mlp(seed=3003 + i, batch_size=256))).job for i in range(2)]
        dead, killed = kill(running, "nats")
        restarted(running, "nats", dead)
        wait_for_port(port_of(running.nats_url))
        times["nats (kill -> port accepts)"] = time.monotonic() - killed
        for job in jobs:
            await wait_for(client, job.id, SUCCEEDED, timeout=300)

        # SecantusDB on disk: what it stored is still there.
        dead, killed = kill(running, "secantusdb")
        restarted(running, "secantusdb", dead)
        wait_for_mongo(running.mongo_uri)
        times["secantusdb (kill -> ping answers)"] = time.monotonic() - killed
        times["secantusdb (kill -> scheduler reads the leaderboard)"] = (
            await on_leaderboard(client, first.id) - killed
        )

        # The scheduler: serving on the same port, the same leaderboard, taking new jobs.
        dead, killed = kill(running, "scheduler")
        process = restarted(running, "scheduler", dead)
        wait_until_serving(running.address, process)
        times["scheduler (kill -> health SERVING)"] = time.monotonic() - killed
        await on_leaderboard(client, first.id)
        late = (await client.submit(mlp(seed=3005, batch_size=256))).job
        done = await wait_for(client, late.id, SUCCEEDED, timeout=120)
        assert done.result.test_accuracy > 0.9
        board = [job.id for job in await client.leaderboard(50)]
    assert {first.id, queued.id, *[job.id for job in jobs], late.id} <= set(board)
    for what, seconds in times.items():
        print(f"restart time: {what}: {seconds:.2f} s")
    assert [notice.split(" at ")[0] for notice in notices] == [
        f"{name} exited with -9" for name in ("trainer-1", "nats", "secantusdb", "scheduler")
    ]
    assert all(re.fullmatch(RESTARTED.format(code=-9, n=1), n.split(" ", 1)[1]) for n in notices)
    for name, process in running.stack.processes:
        assert process.poll() is None, f"{name} is down"
    assert "--- tuner: exited with -9; starting it again ---" in running.log("scheduler")


def test_a_child_that_keeps_crashing_is_reported_with_its_log_and_left_down(
    tmp_path: Path,
) -> None:
    stack = Stack(tmp_path, restart_first=0.05, restart_cap=0.2)
    stack.env.update(TUNER_DEVICE="tpu")
    notices: list[str] = []
    try:
        stack.start_trainer(1)
        stack.supervise(notices.append, interval=0.05)
        deadline = time.monotonic() + 120
        while not stack.given_up():
            assert time.monotonic() < deadline, notices
            time.sleep(0.1)
        time.sleep(1)  # well past the longest backoff: nothing restarts it any more
        assert stack.process("trainer-1").poll() == 1
        *restarts, last = notices
    finally:
        stack.stop()
    assert len(restarts) == 5
    for n, notice in enumerate(restarts, start=1):
        assert re.fullmatch("trainer-1 " + RESTARTED.format(code=1, n=n), notice), notice
    head, _, tail = last.partition("\n")
    assert re.fullmatch(
        rf"trainer-1 keeps crashing \(6 exits in 60 s, the last with 1 at {TIME}\): "
        "not restarting; last lines of its log:",
        head,
    ), head
    assert "trainer: TUNER_DEVICE: must be auto, cpu, cuda or cuda:N, got 'tpu'" in tail
    assert len(tail.splitlines()) <= 20


def lines_of(running: RunningStack, name: str) -> list[dict[str, str]]:
    """Every line of a log, each parsed as JSON."""
    return [json.loads(line) for line in running.log(name).splitlines() if line.strip()]


@pytest.mark.slow
async def test_json_logs_parse_and_carry_the_job_and_request_ids(own_stack: StartStack) -> None:
    running = own_stack(trainers=1, TUNER_LOG_FORMAT="json")
    async with TunerClient(running.address, "alice") as client:
        job = (await client.submit(mlp(seed=3010, batch_size=256))).job
        await wait_for(client, job.id, SUCCEEDED, timeout=120)
    for name in ("scheduler", "trainer-1"):
        lines = lines_of(running, name)
        assert lines, f"{name} wrote nothing"
        for line in lines:
            assert {"time", "level", "logger", "message"} <= set(line), line
            assert line["time"].endswith("+00:00"), line
        about = [line for line in lines if line.get("job_id") == job.id]
        assert about, f"no line of {name} names job {job.id}"
    requests = [line for line in lines_of(running, "scheduler") if "request_id" in line]
    assert any(line.get("job_id") == job.id for line in requests), "submit's line has both ids"


def command_line(pid: int) -> list[str]:
    parts = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return [part.decode() for part in parts if part]


def children(pid: int) -> dict[int, list[str]]:
    """The processes whose parent is `pid`, and their command lines, from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:
                found[int(stat.parent.name)] = command_line(int(stat.parent.name))
        except OSError:
            continue
    return found


def trainer_of(pid: int, seen: dict[int, list[str]]) -> int:
    """The trainer `tuner up` (process `pid`) runs; remembers every child in `seen`."""
    now = children(pid)
    seen.update(now)
    [trainer] = [child for child, command in now.items() if command[-2:] == ["-m", "trainer"]]
    return trainer


def wait_for_text(path: Path, text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while text not in (written := path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{text!r} not in {written!r}"
        time.sleep(0.1)
    return written


@pytest.mark.slow  # kills a child of tuner up and waits for its restart: make test-slow
def test_tuner_up_tells_each_restart_and_stops_everything_on_ctrl_c(
    tmp_path: Path, data_dir: Path
) -> None:
    stderr = tmp_path / "stderr"
    env = {**without_tuner_settings(), "TUNER_DATA_DIR": str(data_dir), "TUNER_DEVICE": "cpu"}
    args = [executable("tuner"), "up", "--no-tui", "--trainers", "1", "--port", str(free_port())]
    args += ["--state-dir", str(tmp_path / "state")]
    seen: dict[int, list[str]] = {}
    with stderr.open("wb") as out:
        up = subprocess.Popen(args, env=env, stderr=out, stdout=subprocess.DEVNULL)
    try:
        wait_for_text(stderr, "stop:    Ctrl-C")
        first = trainer_of(up.pid, seen)
        os.kill(first, signal.SIGKILL)
        written = wait_for_text(stderr, "(1 in the last 60 s)\n")
        assert re.search("tuner: trainer-1 " + RESTARTED.format(code=-9, n=1) + "\n", written)
        assert trainer_of(up.pid, seen) != first
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        assert stderr.read_text().endswith("tuner: stopping\n")
        assert not [pid for pid in seen if Path(f"/proc/{pid}").exists()], "a child outlived it"
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for pid, command in seen.items():  # left by a failure; the same process, not a reused id
            with contextlib.suppress(OSError):
                if command_line(pid) == command:
                    os.kill(pid, signal.SIGKILL)
