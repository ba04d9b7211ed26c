"""The first screen of a browser session beyond loopback: the scheduler knows you by your token."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Label

from tuner.client import TunerClient

CHECK_SECONDS = 10.0


class LoginScreen(Screen[None]):
    """Asks for a token until the scheduler accepts one, then posts LoggedIn with its client."""

    DEFAULT_CSS = """
    LoginScreen {
        align: center middle;
    }
    LoginScreen #login {
        width: 64;
        height: auto;
        border: round $primary;
        border-title-style: bold;
        padding: 1 2;
    }
    LoginScreen #login-error {
        color: $text-error;
        height: auto;
    }
    """

    @dataclass
    class LoggedIn(Message):
        """A client that calls with the accepted token, and who the caller is."""

        client: TunerClient

    def __init__(self, server: str, ca_file: str = "") -> None:
        super().__init__()
        self._server = server
        self._ca_file = ca_file

    def compose(self) -> ComposeResult:
        with Vertical(id="login"):
            yield Label(f"The scheduler at {self._server} asks for your token.", markup=False)
            yield Input(password=True, placeholder="token", id="login-token")
            yield Label("", id="login-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#login").border_title = "tuner · log in"
        self.query_one("#login-token", Input).focus()

    @on(Input.Submitted, "#login-token")
    def _submitted(self, event: Input.Submitted) -> None:
        token = event.value.strip()
        if not token:
            self._refuse("type your token, then Enter")
            return
        self.query_one("#login-error", Label).update("checking…")
        self.check(token)

    @work(exclusive=True, group="login")
    async def check(self, token: str) -> None:
        client = TunerClient(self._server, "", token, self._ca_file)
        try:
            client.user = await asyncio.wait_for(client.caller(), CHECK_SECONDS)
        except (grpc.aio.AioRpcError, TimeoutError) as error:
            await client.close()
            self._refuse(_reason(error, self._server))
            return
        self.post_message(self.LoggedIn(client))

    def _refuse(self, reason: str) -> None:
        self.query_one("#login-error", Label).update(reason)
        token = self.query_one("#login-token", Input)
        token.clear()
        token.focus()


def _reason(error: grpc.aio.AioRpcError | TimeoutError, server: str) -> str:
    if isinstance(error, TimeoutError):
        return f"the scheduler at {server} did not answer: try again"
    if error.code() == grpc.StatusCode.UNAUTHENTICATED:
        return "unknown token: try again"
    return f"the scheduler at {server} said {error.code().name}: {error.details()}: try again"
