"""One browser tab's dashboard: the process textual-serve starts per session (`python -m ...`).

Its settings come from the environment `tui.web` gives it, never from argv (visible in `ps`):
TUNER_SERVER, TUNER_USER, TUNER_TOKEN, TUNER_TLS_CA_FILE, and TUNER_WEB_LOGIN: "0" runs as
that user, anything else asks for a token first.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from textual import on
from textual.screen import Screen

from tui.app import TunerApp
from tui.screens.login import LoginScreen
from tui.screens.main import MainScreen
from tuner.client import TunerClient

PARENT_CHECK_SECONDS = 1.0
DASHBOARD = "dashboard"


@dataclass(frozen=True)
class SessionSettings:
    server: str
    user: str
    token: str = field(default="", repr=False)
    ca_file: str = ""
    login: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SessionSettings:
        login = env.get("TUNER_WEB_LOGIN", "1") != "0"  # unset asks: a mistake fails closed
        return cls(
            server=env.get("TUNER_SERVER") or "127.0.0.1:50051",
            user="" if login else env.get("TUNER_USER") or "anonymous",  # named by the token
            token="" if login else env.get("TUNER_TOKEN", ""),
            ca_file=env.get("TUNER_TLS_CA_FILE", ""),
            login=login,
        )


class WebSessionApp(TunerApp):
    """The dashboard, behind the login screen when a token is asked for; it quits when the
    server that started it is gone (a closed tab tells it to quit; a killed server cannot)."""

    def __init__(self, client: TunerClient, settings: SessionSettings, parent: int) -> None:
        super().__init__(client)
        self._settings = settings
        self._logging_in = settings.login
        self._server_pid = parent

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(PARENT_CHECK_SECONDS, self._check_parent)

    def _check_parent(self) -> None:
        if os.getppid() != self._server_pid:
            self.exit(1)

    def get_default_screen(self) -> Screen[None]:
        if self._logging_in:
            return LoginScreen(self._settings.server, self._settings.ca_file)
        return super().get_default_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Before a token is accepted the dashboard's screens and palette stay shut.
        if self._logging_in and action != "quit":
            return False
        return super().check_action(action, parameters)

    @on(LoginScreen.LoggedIn)
    async def _logged_in(self, message: LoginScreen.LoggedIn) -> None:
        # The login screen is the default mode's base, which cannot be switched away: the
        # dashboard gets a mode of its own, so no key ever leads back to the login.
        self._logging_in = False
        self.client = message.client
        self.add_mode(DASHBOARD, lambda: MainScreen(message.client, self.clock, self.live))
        await self.switch_mode(DASHBOARD)


async def run_session(settings: SessionSettings) -> int:
    parent = os.getppid()
    async with TunerClient(settings.server, settings.user, settings.token, settings.ca_file) as c:
        app = WebSessionApp(c, settings, parent)
        try:
            await app.run_async()
        finally:
            if app.client is not c:
                await app.client.close()
        return app.return_code or 0


def main(env: Mapping[str, str] | None = None) -> int:
    return asyncio.run(run_session(SessionSettings.from_env(os.environ if env is None else env)))


if __name__ == "__main__":
    raise SystemExit(main())
