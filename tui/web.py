"""`tuner tui --web`: the dashboard served to browsers, one app process per tab (textual-serve).

On loopback each tab runs as the user who started the server, with their token if any. Beyond
loopback the scheduler must be in token mode (a call without a token is refused), and each tab
asks for a token of its own.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shlex
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc

from tuner.client import TunerClient
from tuner.core.addresses import host_is_loopback

LOOPBACK = "127.0.0.1"
PROBE_SECONDS = 5.0


@dataclass(frozen=True)
class WebSettings:
    """Where the scheduler is and who calls it, and where the page listens."""

    server: str
    user: str
    token: str = field(repr=False)
    ca_file: str
    host: str
    port: int


class Refused(Exception):
    """Serving here would be unsafe, or cannot be checked: one line that says why."""


async def tokens_required(settings: WebSettings) -> bool | None:
    """Whether the scheduler refuses one call that carries no token; None when it won't say."""
    async with TunerClient(settings.server, settings.user, "", settings.ca_file) as client:
        try:
            await asyncio.wait_for(client.list_trainers(), PROBE_SECONDS)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                return True
            return None
        except TimeoutError:
            return None
    return False


async def asks_for_tokens(settings: WebSettings) -> bool:
    """Whether each tab must log in. Raises Refused where listening beyond loopback is unsafe."""
    required = await tokens_required(settings)
    if host_is_loopback(settings.host):
        return required is True and not settings.token  # tokens on, none of yours: each tab asks
    if required is False:
        raise Refused(
            f"refusing to listen on {settings.host}: the scheduler at {settings.server} accepts "
            "calls without a token; start it with TUNER_TOKENS (see Access) or listen on "
            f"{LOOPBACK}"
        )
    if required is None:
        raise Refused(
            f"refusing to listen on {settings.host}: the scheduler at {settings.server} does not "
            "answer, so whether it requires tokens is unknown; start it or listen on "
            f"{LOOPBACK}"
        )
    return True


def session_environment(settings: WebSettings, login: bool) -> dict[str, str]:
    """What each tab's process is told, and only that of the TUNER_ settings (no scheduler's
    token list, and no token at all when each tab logs in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env.update(TUNER_SERVER=settings.server, TUNER_WEB_LOGIN="1" if login else "0")
    if settings.ca_file:
        env["TUNER_TLS_CA_FILE"] = settings.ca_file
    if not login:
        env["TUNER_USER"] = settings.user
        if settings.token:
            env["TUNER_TOKEN"] = settings.token
    return env


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """textual-serve hands each session this process's environment: swapped while serving."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def page_url(host: str, port: int) -> str:
    """The URL to print: one a browser can open, also when listening on every interface."""
    if not host or host in ("0.0.0.0", "::"):  # every interface: this machine's name reaches it
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host.strip('[]')}]"
    return f"http://{host}:{port}/"


def cannot_listen(error: OSError, host: str, port: int) -> str:
    if error.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use"
    reason = error.strerror or str(error)
    return f"cannot listen on {host} port {port}: {reason}"


def listening_refused(host: str, port: int) -> str:
    """Why the page could not listen on (host, port) now, or "": asked before a stack starts."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = found[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            probe.bind(address)
    except OSError as error:
        return cannot_listen(error, host, port)
    return ""


def serve_web(settings: WebSettings, prog: str = "tuner tui --web") -> int:
    """Serves until Ctrl-C; 2 when refused, 1 when it cannot listen."""

    def ready(url: str) -> None:
        print(f"tuner: the dashboard is at {url}", flush=True)

    async def main() -> int:
        try:
            login = await asks_for_tokens(settings)
        except Refused as error:
            print(f"{prog}: {error}", file=sys.stderr)
            return 2
        # aiohttp takes a second to import on a busy machine: not before a refusal.
        from tui.web_server import DashboardServer, ServeError

        command = f"exec {shlex.quote(sys.executable)} -m tui.web_session"
        loopback_only = host_is_loopback(settings.host)
        server = DashboardServer(command, settings.host, settings.port, loopback_only=loopback_only)
        try:
            with environment(session_environment(settings, login)):
                await server.run(page_url(settings.host, settings.port), ready)
        except ServeError as error:
            print(f"{prog}: {error}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(main())
