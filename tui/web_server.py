"""textual-serve's server, kept to its origin: offline page, Host and Origin checks, no framing."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import hdrs, web
from textual_serve.server import Server, to_int
from yarl import URL

from tui.web import cannot_listen
from tuner.core.addresses import host_is_loopback

# Seconds the sessions get, once the server is told to stop, to quit on their own.
SHUTDOWN_SECONDS = 1.0
TEMPLATE = "app_index.html"
# The page would load its font from Google: it is served from the package's own static files.
GOOGLE_FONTS = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*>", re.DOTALL)
LOCAL_FONT = """<style>
      @font-face { font-family: "Roboto Mono"; font-style: normal;
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf"); }
      @font-face { font-family: "Roboto Mono"; font-style: italic;
        src: url("{{ config.static.url }}fonts/RobotoMono-Italic-VariableFont_wght.ttf"); }
    </style>"""
HEADERS = {
    "X-Frame-Options": "DENY",  # another site must not frame the dashboard to steer its clicks
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServeError(Exception):
    """The server cannot start: one line that says why."""


class DashboardServer(Server):
    """Runs `command` once per websocket (browser tab). `loopback_only` refuses a request whose
    Host is not a loopback name: a page on another site that rebinds its name to 127.0.0.1
    reaches the port, but not with a loopback Host."""

    def __init__(self, command: str, host: str, port: int, *, loopback_only: bool) -> None:
        super().__init__(command, host=host, port=port, title="tuner")
        self.loopback_only = loopback_only

    def page(self) -> str:
        """textual-serve's page template, with its font served here and a title."""
        upstream = (files("textual_serve") / "templates" / TEMPLATE).read_text()
        offline = GOOGLE_FONTS.sub(lambda _: LOCAL_FONT, upstream)
        return offline.replace("<head>", "<head>\n    <title>{{ application.name }}</title>", 1)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({TEMPLATE: self.page()}))
        app.middlewares.append(self._guard)
        app.on_response_prepare.append(_add_headers)
        return app

    async def on_startup(self, app: web.Application) -> None:
        """Quiet: the command prints its one line once it listens."""

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.loopback_only and not host_is_loopback(request.url.host or ""):
            raise web.HTTPForbidden(text="this dashboard answers to 127.0.0.1 or localhost only")
        origin = request.headers.get(hdrs.ORIGIN)
        # A websocket is not held to CORS: any site could drive a session but for this check.
        if request.path == "/ws" and origin is not None and not _same_origin(origin, request):
            raise web.HTTPForbidden(text="a session is opened from this dashboard's own page")
        return await handler(request)

    @aiohttp_jinja2.template(TEMPLATE)
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """The page, its links made from the address the browser used (0.0.0.0 is none)."""
        # Behind a TLS proxy the page is https, and its websocket must be wss to be allowed.
        proxied = request.headers.get("X-Forwarded-Proto") == "https"
        scheme = "https" if proxied else request.scheme
        base = URL.build(scheme=scheme, authority=request.host)
        ws = base.with_scheme("wss" if scheme == "https" else "ws")
        static = str(request.app.router["static"].url_for(filename="/")).rstrip("/") + "/"
        return {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": str(ws.with_path(str(request.app.router["websocket"].url_for()))),
            "config": {"static": {"url": str(base.with_path(static))}},
            "application": {"name": self.title},
        }

    async def run(self, url: str, ready: Callable[[str], None]) -> None:
        """Serves until SIGINT or SIGTERM; `ready(url)` once listening. Raises ServeError."""
        runner = web.AppRunner(
            await self._make_app(), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
        )
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, self.host, self.port).start()
            except OSError as error:
                raise ServeError(cannot_listen(error, self.host, self.port)) from None
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for number in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(number, stop.set)
            ready(url)
            await stop.wait()
        finally:
            await runner.cleanup()


def _same_origin(origin: str, request: web.Request) -> bool:
    sent = URL(origin)
    if sent.scheme not in ("http", "https"):  # "null" among others
        return False
    served = URL.build(scheme=sent.scheme, authority=request.host)
    return (sent.host, sent.port) == (served.host, served.port)


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(HEADERS)
