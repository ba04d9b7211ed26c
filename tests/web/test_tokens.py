"""Beyond loopback, against a scheduler with tokens: each tab logs in, and rides out an outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page
from yarl import URL

from tests.support.hyperparameters import mlp
from tests.support.stack import RunningStack, start_stack
from tests.support.web import (
    WebServer,
    command_line_of,
    environment_of,
    screen_text,
    start_web,
    until_children,
    until_shown,
)
from tests.web.conftest import OpenTab
from tuner.client import TunerClient

ALICE = "alice-web"
ALICE_TOKEN = "alice-web-token-0123456789abcdef"


@pytest.fixture(scope="module")
def token_stack(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[RunningStack]:
    """No trainer: alice's job stays queued, and names her to the dashboard."""
    running = start_stack(
        tmp_path_factory.mktemp("tokens"),
        data_dir,
        trainers=0,
        TUNER_TOKENS=f"{ALICE}: {ALICE_TOKEN}",
    )
    try:
        yield running
    finally:
        running.stack.stop()


@pytest.fixture(scope="module")
async def everywhere(
    token_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WebServer]:
    """`tuner tui --web --host 0.0.0.0`, started by alice with her token in her environment."""
    async with TunerClient(token_stack.address, ALICE, ALICE_TOKEN) as alice:
        await alice.submit(mlp(171720))
    log = tmp_path_factory.mktemp("web-tokens") / "web.log"
    server = await start_web(
        token_stack.address, log, "--host", "0.0.0.0", env={"TUNER_TOKEN": ALICE_TOKEN}
    )
    try:
        yield server
    finally:
        server.stop()


def local(server: WebServer) -> str:
    """The page on loopback: 0.0.0.0 listens there too, and the URL printed is the host's name."""
    return f"http://127.0.0.1:{URL(server.url).port}/"


async def type_token(page: Page, token: str) -> None:
    await page.locator("textarea.xterm-helper-textarea").focus()
    await page.keyboard.type(token)
    assert token not in await screen_text(page), "the token is masked"
    await page.keyboard.press("Enter")


async def test_each_tab_logs_in_with_its_own_token(
    everywhere: WebServer, open_tab: OpenTab
) -> None:
    page = await open_tab(local(everywhere))
    await until_shown(page, "asks for your token")

    [session] = await until_children(everywhere.process.pid, 1)
    env = environment_of(session)
    assert env["TUNER_WEB_LOGIN"] == "1"
    assert ALICE_TOKEN not in "\0".join(env.values()), "the starter's token stays with her"
    assert ALICE_TOKEN not in command_line_of(session)
    assert ALICE_TOKEN not in await page.content()

    await type_token(page, "not-alice-token-0123456789")
    await until_shown(page, "unknown token", "asks for your token")
    await type_token(page, ALICE_TOKEN)
    await until_shown(page, "Leaderboard", f"{ALICE} @", "queued", "lr=0.001")


@pytest.mark.slow  # a fault test: the scheduler killed and started again (make test-slow)
async def test_a_scheduler_outage_shows_and_passes(
    token_stack: RunningStack, everywhere: WebServer, open_tab: OpenTab
) -> None:
    page = await open_tab(local(everywhere))
    await until_shown(page, "asks for your token")
    await type_token(page, ALICE_TOKEN)
    await until_shown(page, f"@ {token_stack.address} · connected")

    scheduler = token_stack.stack.process("scheduler")
    scheduler.kill()
    scheduler.wait()
    await until_shown(page, "connection lost", "retrying")

    port = int(token_stack.address.rsplit(":", 1)[1])
    await asyncio.to_thread(token_stack.stack.start_scheduler, port)
    await until_shown(page, f"@ {token_stack.address} · connected")
