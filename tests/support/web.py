"""The dashboard in a browser, for tests: `tuner tui --web` as a process, Chromium through
playwright, the terminal's text read out of the page, and the processes behind the tabs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Page, ViewportSize

from tests.support.processes import without_tuner_settings
from tests.support.stack import REPO
from tuner.stack import executable, free_port

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = "chromium not installed: apt-get install chromium (make install does it as root)"
# Headless and offline: nothing of Chromium's own reaches for the network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1600, "height": 900}
# textual.js keeps its xterm.js Terminal to itself (`this.terminal = new Terminal(...)`): a setter
# on Object.prototype sees that assignment and keeps each terminal where the test can read it.
KEEP_TERMINALS = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true});
    if (value && value.buffer) { (window.__terminals = window.__terminals || []).push(value); }
  },
});
"""
READ_SCREEN = """() => {
  const terminal = (window.__terminals || [])[0];
  if (!terminal) return "";
  const buffer = terminal.buffer.active, rows = [];
  for (let y = 0; y < terminal.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
}"""
URL_LINE = "tuner: the dashboard is at "


@dataclass
class WebServer:
    """A `tuner tui --web` process; its output goes to `log`."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def web_command(server: str, *args: str) -> list[str]:
    return [executable("tuner"), "tui", "--web", "--server", server, *args]


def run_web(
    server: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """`tuner tui --web ...` to its end: for the refusals."""
    return subprocess.run(
        web_command(server, *args),
        env={**without_tuner_settings(), **(env or {})},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


async def start_web(
    server: str,
    log: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> WebServer:
    """Starts `tuner tui --web` on a free port (unless `args` name one) and waits for its URL."""
    if "--port" not in args:
        args = (*args, "--port", str(free_port()))
    with log.open("wb") as out:
        process = subprocess.Popen(
            web_command(server, *args),
            env={**without_tuner_settings(), **(env or {})},
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(URL_LINE):
                return WebServer(process, line.removeprefix(URL_LINE).strip(), log)
        if process.poll() is not None:
            break
        await asyncio.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError(f"tuner tui --web did not print its URL:\n{log.read_text()}")


async def screen_text(page: Page) -> str:
    text: str = await page.evaluate(READ_SCREEN)
    return text


async def until_shown(page: Page, *texts: str, timeout: float = 30) -> str:
    """The screen once every one of `texts` is on it; fails with the screen as it was."""
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = await screen_text(page)
        if all(text in shown for text in texts):
            return shown
        await asyncio.sleep(0.2)
    missing = [text for text in texts if text not in shown]
    raise AssertionError(f"not on the page after {timeout:g} s: {missing}\n{shown}")


async def until_line(page: Page, *texts: str, timeout: float = 30) -> str:
    """The first line of the screen that holds every one of `texts`, once there is one."""
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = await screen_text(page)
        for line in shown.splitlines():
            if all(text in line for text in texts):
                return line
        await asyncio.sleep(0.2)
    raise AssertionError(f"no line with {list(texts)} after {timeout:g} s:\n{shown}")


async def type_on(page: Page, text: str) -> None:
    """Keys into the terminal (the app's focused widget), then Enter."""
    await page.locator(".xterm-screen").click()
    await page.keyboard.type(text)
    await page.keyboard.press("Enter")


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (a tab's session is the server's child)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry.name))
    return sorted(found)


async def until_children(pid: int, count: int, timeout: float = 20) -> list[int]:
    """The server's session processes once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while len(found := children(pid)) != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} session processes, not {count}: {found}")
        await asyncio.sleep(0.1)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


async def until_gone(pids: Sequence[int], timeout: float = 5) -> float:
    """Seconds until none of `pids` lives; fails after `timeout`."""
    started = time.monotonic()
    while any(alive(pid) for pid in pids):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"still running after {timeout:g} s: {pids}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(): value.decode(errors="replace") for key, value in pairs}


def command_line_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def cpu_seconds(pid: int) -> float:
    """User plus system time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
