"""What a browser tab's process is told, and the URL printed: no secrets beyond what it needs."""

from __future__ import annotations

import socket

import pytest

from tui.web import WebSettings, page_url, session_environment
from tui.web_session import SessionSettings

TOKEN = "starter-token-0123456789"


def settings(host: str = "127.0.0.1") -> WebSettings:
    return WebSettings("127.0.0.1:50051", "carol", TOKEN, "/ca.pem", host, 8080)


def test_on_loopback_a_tab_runs_as_the_starter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_TOKENS", "carol: every-token-of-the-scheduler")
    monkeypatch.setenv("HOME", "/home/carol")

    env = session_environment(settings(), login=False)

    assert {k: v for k, v in env.items() if k.startswith("TUNER_")} == {
        "TUNER_SERVER": "127.0.0.1:50051",
        "TUNER_USER": "carol",
        "TUNER_TOKEN": TOKEN,
        "TUNER_TLS_CA_FILE": "/ca.pem",
        "TUNER_WEB_LOGIN": "0",
    }
    assert env["HOME"] == "/home/carol"
    assert SessionSettings.from_env(env) == SessionSettings(
        "127.0.0.1:50051", "carol", TOKEN, "/ca.pem", login=False
    )


def test_a_tab_that_logs_in_gets_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_TOKEN", TOKEN)

    env = session_environment(settings("0.0.0.0"), login=True)

    assert TOKEN not in env.values()
    assert env["TUNER_WEB_LOGIN"] == "1"
    assert SessionSettings.from_env(env).token == ""


def test_a_session_told_nothing_asks_for_a_token() -> None:
    told = SessionSettings.from_env({"TUNER_TOKEN": TOKEN, "TUNER_USER": "carol"})
    assert (told.login, told.token) == (True, "")


def test_the_url_printed_is_one_a_browser_can_open() -> None:
    assert page_url("127.0.0.1", 8080) == "http://127.0.0.1:8080/"
    assert page_url("::1", 8080) == "http://[::1]:8080/"
    assert page_url("0.0.0.0", 9000) == f"http://{socket.gethostname()}:9000/"
