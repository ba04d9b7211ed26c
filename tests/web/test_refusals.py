"""`tuner tui --web` refuses what is unsafe or impossible with one line, before any browser."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import without_tuner_settings
from tests.support.stack import RunningStack
from tests.support.web import run_web
from tuner.cli import main
from tuner.stack import executable, free_port


def test_beyond_loopback_it_refuses_a_scheduler_without_tokens(
    running_stack: RunningStack,
) -> None:
    port = free_port()
    result = run_web(running_stack.address, "--host", "0.0.0.0", "--port", str(port))

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"tuner tui --web: refusing to listen on 0.0.0.0: the scheduler at "
        f"{running_stack.address} accepts calls without a token; start it with TUNER_TOKENS "
        "(see Access) or listen on 127.0.0.1"
    ]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "nothing listens"


def test_beyond_loopback_it_refuses_a_scheduler_that_does_not_answer() -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    result = run_web(nowhere, "--host", "0.0.0.0", "--port", str(free_port()))

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"tuner tui --web: refusing to listen on 0.0.0.0: the scheduler at {nowhere} does not "
        "answer, so whether it requires tokens is unknown; start it or listen on 127.0.0.1"
    ]


def test_a_port_in_use_is_named_in_one_line(running_stack: RunningStack) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_web(running_stack.address, "--port", str(port))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"tuner tui --web: port {port} on 127.0.0.1 is in use"]


def test_the_help_explains_the_web_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["tui", "--help"])

    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    for text in ("--web", "--host HOST", "--port PORT", "default 127.0.0.1", "default 8080"):
        assert text in shown
    assert "tokens (TUNER_TOKENS), and each tab logs in" in shown


def test_tuner_up_web_names_a_port_in_use_before_it_starts_anything(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["up", "--web", "--web-port", str(port), "--state-dir", str(state_dir)]
        result = subprocess.run(
            [executable("tuner"), *args],
            env=without_tuner_settings(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"tuner up --web: port {port} on 127.0.0.1 is in use"]
    assert not state_dir.exists(), "no process of the stack was started"
