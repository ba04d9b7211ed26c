"""Starts, watches and stops the processes of a stack: NATS, SecantusDB, scheduler, trainers.

`tuner up` and the integration tests start the stack through this one module. Supervised
(`Stack.supervise`), a child that exits is started again with the same command line and
environment, so on the same port and state folder; one that keeps exiting is given up on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

NOT_RETRYABLE = "&retryWrites=false"  # the embedded database's URI option, see start_mongo
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def executable(name: str) -> str:
    """A command installed beside this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: run `make install`")
    return found


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def wait_until_serving(
    address: str, process: subprocess.Popen[bytes], timeout: float = 60, ca_file: str = ""
) -> None:
    """Waits for grpc.health.v1 to answer SERVING."""
    deadline = time.monotonic() + timeout
    if ca_file:
        credentials = grpc.ssl_channel_credentials(Path(ca_file).read_bytes())
        channel = grpc.secure_channel(address, credentials)
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the scheduler exited with {process.returncode}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"the scheduler at {address} is not serving after {timeout} s")


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Child:
    """How a process was started, so that it can be started again exactly so."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: IO[bytes]
    process: subprocess.Popen[bytes]
    exits: deque[float] = field(default_factory=deque)  # monotonic times, within the window
    code: int = 0  # the last exit status
    exited_at: str = ""  # the last exit's local time, HH:MM:SS
    restart_at: float | None = None
    given_up: bool = False


def clock() -> str:
    return time.strftime("%H:%M:%S")


@dataclass
class Stack:
    """Processes started in order and stopped in reverse; logs go to state_dir/logs.

    Supervised, a child that exits is restarted after 0.5 s, doubling to 10 s the more
    it exits; after more than `max_exits` exits within `exit_window` seconds it stays down.
    """

    state_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    restart_first: float = 0.5
    restart_cap: float = 10.0
    max_exits: int = 5
    exit_window: float = 60.0
    _logs: list[IO[bytes]] = field(default_factory=list)
    _children: dict[str, Child] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: bool = False
    _quit: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    def _popen(
        self, args: list[str], env: dict[str, str], log: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C reaches only `tuner up`, which stops all in order
        )

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        env = dict(self.env)
        process = self._popen(args, env, log)
        with self._lock:
            self.processes.append((name, process))
            self._children[name] = Child(name, args, env, log, process)
        return process

    def check(self) -> list[str]:
        """Restarts the children that exited, when their backoff is over; returns what it did.

        Call it often (`supervise` does, from a thread): it never waits on a child.
        """
        notices: list[str] = []
        with self._lock:
            if self._stopping:
                return notices
            now = time.monotonic()
            for child in self._children.values():
                if child.given_up:
                    continue
                if child.restart_at is None:
                    code = child.process.poll()
                    if code is None:
                        continue
                    notice = self._exited(child, code, now)
                    if notice:
                        notices.append(notice)
                        continue
                assert child.restart_at is not None
                if now >= child.restart_at:
                    notices.append(self._restart(child))
        return notices

    def _exited(self, child: Child, code: int, now: float) -> str:
        """Counts an exit and schedules the restart; or gives up, and says so."""
        child.code = code
        child.exited_at = clock()
        child.exits.append(now)
        while child.exits and child.exits[0] < now - self.exit_window:
            child.exits.popleft()
        count = len(child.exits)
        if count > self.max_exits:
            child.given_up = True
            tail = log_tail(self.log_path(child.name))
            return (
                f"{child.name} keeps crashing ({count} exits in {self.exit_window:g} s, the last "
                f"with {code} at {child.exited_at}): not restarting; last lines of its log:\n{tail}"
            )
        delay = min(self.restart_cap, self.restart_first * 2 ** (count - 1))
        child.restart_at = now + delay
        return ""

    def _restart(self, child: Child) -> str:
        child.restart_at = None
        old = child.process
        child.log.write(f"--- tuner: exited with {child.code}; starting it again ---\n".encode())
        child.log.flush()
        try:
            child.process = self._popen(child.args, child.env, child.log)
        except OSError as error:  # counted as one more exit: retried with backoff, or given up
            child.process = old
            return self._exited(child, child.code, time.monotonic()) or (
                f"{child.name} exited with {child.code} at {child.exited_at}; "
                f"could not restart it: {error}"
            )
        self.processes = [(n, child.process if p is old else p) for n, p in self.processes]
        count = len(child.exits)
        return (
            f"{child.name} exited with {child.code} at {child.exited_at}; restarted at "
            f"{clock()} ({count} in the last {self.exit_window:g} s)"
        )

    def supervise(self, notify: Callable[[str], None], interval: float = 0.2) -> None:
        """Checks the children every `interval` seconds in a thread until `stop`; tells `notify`."""

        def loop() -> None:
            while not self._quit.wait(interval):
                for notice in self.check():
                    notify(notice)

        if self._supervisor is not None:
            raise RuntimeError("this stack is supervised already")
        self._quit.clear()
        self._supervisor = threading.Thread(target=loop, name="stack-supervisor", daemon=True)
        self._supervisor.start()

    def given_up(self) -> list[str]:
        """The children that kept crashing and are no longer restarted."""
        with self._lock:
            return [c.name for c in self._children.values() if c.given_up]

    def process(self, name: str) -> subprocess.Popen[bytes]:
        """The latest process started under `name`."""
        return next(p for n, p in reversed(self.processes) if n == name)

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def start_nats(self, port: int | None = None, user: str = "", password: str = "") -> str:
        port = port or free_port()
        store = self.state_dir / "nats"
        args = [executable("nats-server"), "-js", "-a", LOOPBACK, "-p", str(port)]
        args += ["-sd", str(store)]
        if user:
            args += ["--user", user, "--pass", password]
        wait_for_port(port, self._start("nats", args))
        credentials = f"{user}:{password}@" if user else ""
        url = f"nats://{credentials}{LOOPBACK}:{port}"
        self.env["TUNER_NATS_URL"] = url
        return url

    def start_mongo(self, port: int | None = None, in_memory: bool = False) -> str:
        port = port or free_port()
        storage = ":memory:" if in_memory else str(self.state_dir / "db")
        args = [
            executable("secantusd-py"),
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--storage-path",
            storage,
            "--log-level",
            "WARNING",
        ]
        if not in_memory:
            args.append("--sync-on-commit")
        wait_for_port(port, self._start("secantusdb", args))
        # SecantusDB keeps each retryable write's reply for 30 minutes and walks them all on
        # every write (sorting them past 10,000): a write 4.2x dearer past 10,000 of them
        # (RESULTS.md, row 10). The driver's one retry of a failed write is given up: the
        # services try a failed write again from their own loops, and SecantusDB would lose
        # the replies it replays when it restarts anyway (it keeps them in memory).
        uri = f"mongodb://{LOOPBACK}:{port}/?directConnection=true{NOT_RETRYABLE}"
        self.env["TUNER_MONGO_URI"] = uri
        return uri

    def start_scheduler(self, port: int | None = None) -> str:
        address = f"{LOOPBACK}:{port or free_port()}"
        self.env["TUNER_LISTEN"] = address
        process = self._start("scheduler", [sys.executable, "-m", "scheduler"])
        wait_until_serving(address, process, ca_file=self.env.get("TUNER_TLS_CA_FILE", ""))
        self.env["TUNER_SERVER"] = address
        return address

    def start_trainer(self, index: int = 1, threads: int = 0) -> subprocess.Popen[bytes]:
        """`threads` limits torch's threads, so that trainers sharing cores don't thrash."""
        env = dict(self.env, TUNER_TRAINER_NAME=f"trainer-{index}")
        if threads:
            env["TUNER_TORCH_THREADS"] = str(threads)
        saved, self.env = self.env, env
        try:
            return self._start(f"trainer-{index}", [sys.executable, "-m", "trainer"])
        finally:
            self.env = saved

    def stop(self, timeout: float = 10) -> None:
        with self._lock:
            self._stopping = True  # no restart from here on
        self._quit.set()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join()
        self._supervisor = None
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        self._children.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        self._stopping = False
