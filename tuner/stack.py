"""Starts and stops the processes of a tuner stack: NATS, SecantusDB, scheduler, trainers.

`tuner up` and the integration tests start the stack through this one module.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

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


@dataclass
class Stack:
    """Processes started in order and stopped in reverse; logs go to state_dir/logs."""

    state_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,  # a Ctrl-C reaches only `tuner up`, which stops all in order
        )
        self.processes.append((name, process))
        return process

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
        uri = f"mongodb://{LOOPBACK}:{port}/?directConnection=true"
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
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
