"""What `tuner up` tells of its processes (restarts, give-ups) shows in the dashboard."""

from __future__ import annotations

import queue
import threading

from tests.support.dashboard import NOW, until
from tui.app import TunerApp
from tui.clock import fixed
from tui.widgets.status import ConnectionStatus
from tuner.client import TunerClient


async def test_a_notice_from_another_thread_shows_in_the_status_line_and_a_toast(
    client: TunerClient,
) -> None:
    notices: queue.SimpleQueue[str] = queue.SimpleQueue()
    app = TunerApp(client, clock=fixed(NOW), live=False, notices=notices)
    async with app.run_test() as pilot:
        status = app.screen.query_one(ConnectionStatus)
        restart = "trainer-1 exited with -9 at 14:40:05; restarted at 14:40:06 (1 in the last 60 s)"
        threading.Thread(target=notices.put, args=(restart,)).start()
        await until(pilot, lambda: restart in str(status.render()), timeout=10)
        assert str(status.render()).startswith("tuner · ")
        crash = (
            "scheduler keeps crashing (6 exits in 60 s, the last with 1 at 14:41:10): "
            "not restarting; "
            "last lines of its log:\nscheduler: TUNER_LISTEN: bad"
        )
        notices.put(crash)
        await until(pilot, lambda: "keeps crashing" in str(status.render()), timeout=10)
        assert "TUNER_LISTEN" not in str(status.render()), "only the first line"
        toasts = [(n.message, n.severity) for n in app._notifications]
        assert toasts == [(restart, "warning"), (crash, "error")]
