"""Hosts on one machine: network namespaces cabled to a switch (a bridge in a namespace of its own).

Every address is one given here, inside these namespaces, and no namespace has a route anywhere
else, so whatever the processes in them send stays among them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SUBNET = "10.77.0"
PREFIX = "tunertest"
RELAY = Path(__file__).with_name("relay.py")


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root: run `make test-cluster` as root"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
    except RuntimeError as error:
        return f"cannot make a network namespace: {error}"
    ip("netns", "del", probe)
    return None


def remove_stale() -> None:
    """Namespaces left by a test run whose process is gone (killed before it cleaned up)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name, pid in re.findall(rf"^({PREFIX}(\d+)-\S+)", listed, re.M):
        if not Path(f"/proc/{pid}").exists():
            left = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
            for orphan in left.stdout.split():
                os.kill(int(orphan), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    address: str
    port: str  # the switch's end of its cable


class Network:
    """Namespaces and the processes started in them; close() removes all, whatever happened."""

    def __init__(self, logs: Path) -> None:
        remove_stale()
        self.prefix = f"{PREFIX}{os.getpid()}"
        self.switch = f"{self.prefix}-switch"
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.hosts: dict[str, Host] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._namespaces: list[str] = []
        self._add_namespace(self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self._namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def add_host(self, name: str, octet: int) -> Host:
        host = Host(name, f"{self.prefix}-{name}", f"{SUBNET}.{octet}", f"p-{name}")
        self._add_namespace(host.netns)
        ip("-n", self.switch, "link", "add", host.port, "type", "veth",
           "peer", "name", "eth0", "netns", host.netns)  # fmt: skip
        ip("-n", self.switch, "link", "set", host.port, "master", "br0", "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", host.netns, "link", "set", "eth0", "up")
        self.hosts[name] = host
        return host

    def unplug(self, host: Host) -> None:
        ip("-n", self.switch, "link", "set", host.port, "down")

    def plug(self, host: Host) -> None:
        ip("-n", self.switch, "link", "set", host.port, "up")

    def start(
        self,
        name: str,
        args: list[str],
        host: Host | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        piped: bool = False,
    ) -> subprocess.Popen[bytes]:
        """A process on `host` (None: this machine); its output in logs/NAME.log, or piped."""
        prefix = ["ip", "netns", "exec", host.netns] if host else []
        with open(self.logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                [*prefix, *args],
                stdout=subprocess.PIPE if piped else log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def relay(self, host: Host, target: str) -> str:
        """A loopback address on this machine that reaches `target` from inside `host`."""
        name = f"relay-{host.name}-{target.replace(':', '-')}"
        process = self.start(name, [sys.executable, str(RELAY), host.netns, target], piped=True)
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        if not port.isdigit():
            raise RuntimeError(f"relay to {target} on {host.name} failed: {self.log(name)}")
        return f"127.0.0.1:{port}"

    def log(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes.values()):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
        for name in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
