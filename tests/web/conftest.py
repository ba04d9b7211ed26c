"""Fixtures for the dashboard in a browser: one Chromium for the session, a server per module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from playwright.async_api import Browser, Page, async_playwright
from yarl import URL

from tests.support.stack import RunningStack
from tests.support.web import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    KEEP_TERMINALS,
    NO_CHROMIUM,
    VIEWPORT,
    WebServer,
    start_web,
)

# Passed by the server's starter on loopback; the session stack has no tokens and ignores it.
STARTER_TOKEN = "web-starter-token-0123456789"
STARTER = "web-starter"

OpenTab = Callable[[str], Awaitable[Page]]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def open_tab(browser: Browser) -> AsyncIterator[OpenTab]:
    """Opens tabs in a fresh profile; fails the test if a page fetched anything from elsewhere
    than the dashboard's own server (the network here is closed, and should stay unasked)."""
    context = await browser.new_context(viewport=VIEWPORT)
    await context.add_init_script(KEEP_TERMINALS)
    foreign: list[str] = []

    async def open_one(url: str) -> Page:
        page = await context.new_page()
        origin = URL(url).origin()
        page.on(
            "request", lambda r: None if URL(r.url).origin() == origin else foreign.append(r.url)
        )
        await page.goto(url)
        return page

    try:
        yield open_one
    finally:
        await context.close()
    assert foreign == [], "fetched from elsewhere than the dashboard's server"


@pytest.fixture(scope="module")
async def loopback(
    running_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WebServer]:
    """`tuner tui --web` on 127.0.0.1 against the session's stack, as STARTER with a token."""
    log = tmp_path_factory.mktemp("web") / "web.log"
    server = await start_web(
        running_stack.address,
        log,
        "--user",
        STARTER,
        env={"TUNER_TOKEN": STARTER_TOKEN},
    )
    try:
        yield server
    finally:
        server.stop()
