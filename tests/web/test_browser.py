"""The dashboard in Chromium against the session's stack: what it shows, one session per tab.

Seeds 171700-171799 are tests/web's: jobs are deduplicated across the whole session's stack.
"""

from __future__ import annotations

import asyncio
import json

from tests.support.hyperparameters import mlp
from tests.support.stack import RunningStack
from tests.support.web import (
    WebServer,
    command_line_of,
    environment_of,
    until_children,
    until_gone,
    until_line,
    until_shown,
)
from tests.web.conftest import STARTER, STARTER_TOKEN, OpenTab
from tui import formatting
from tuner.client import TunerClient
from tuner.stack import executable


async def submit_from_the_cli(address: str, seed: int, lr: str) -> dict[str, object]:
    """`tuner submit --wait --json` as its own process, as a user would; the finished job."""
    process = await asyncio.create_subprocess_exec(
        executable("tuner"),
        "submit",
        "--server",
        address,
        "--user",
        "web-cli",
        "--epochs",
        "1",
        "--lr",
        lr,
        "--batch-size",
        "1024",  # the fewest steps: the quickest epoch
        "--model",
        "mlp",
        "--seed",
        str(seed),
        "--wait",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    job: dict[str, object] = json.loads(out)
    return job


async def test_the_page_shows_the_dashboard_and_a_job_submitted_from_the_cli(
    running_stack: RunningStack, loopback: WebServer, open_tab: OpenTab
) -> None:
    page = await open_tab(loopback.url)
    # The trainers come over the events feed: once they show, the page follows the feed.
    await until_shown(
        page, "New job", "Submit", "Leaderboard", "Messages", f"{STARTER} @", "trainers 1 ready"
    )

    job = await submit_from_the_cli(running_stack.address, 171701, "0.00171701")

    result = job["result"]
    assert isinstance(result, dict)
    accuracy = formatting.percent(float(result["test_accuracy"]))
    await until_line(page, f"finished: accuracy {accuracy}", "lr=0.00171701")


async def test_two_tabs_each_follow_the_events_and_a_closed_tab_ends_its_session(
    running_stack: RunningStack, loopback: WebServer, open_tab: OpenTab
) -> None:
    first = await open_tab(loopback.url)
    await until_shown(first, "Leaderboard", "trainers 1 ready")
    [first_session] = await until_children(loopback.process.pid, 1)
    second = await open_tab(loopback.url)
    await until_shown(second, "Leaderboard", "trainers 1 ready")
    sessions = await until_children(loopback.process.pid, 2)
    [second_session] = [pid for pid in sessions if pid != first_session]

    # Each session runs as the starter, told through its environment and never its argv.
    for pid in sessions:
        env = environment_of(pid)
        assert (env["TUNER_USER"], env["TUNER_TOKEN"]) == (STARTER, STARTER_TOKEN)
        assert STARTER_TOKEN not in command_line_of(pid)
        assert command_line_of(pid).endswith("-m tui.web_session ")

    # Small batches: the job trains for seconds, long enough to be cancelled while it runs.
    hp = mlp(171702, learning_rate=0.00171702, batch_size=32)
    async with TunerClient(running_stack.address, "web-other") as client:
        job = (await client.submit(hp)).job
        await until_line(first, "started on", "lr=0.00171702")
        await client.cancel(job.id)
    for page in (first, second):
        await until_line(page, "cancelled", "lr=0.00171702")

    await second.close()
    await until_gone([second_session])  # within 5 s, its gRPC streams with it
    assert await until_children(loopback.process.pid, 1) == [first_session]
    await first.close()
    await until_gone([first_session])
