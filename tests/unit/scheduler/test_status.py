"""GetStatus (scheduler/status.py) on a real SecantusDB and nats-server: what it counts, and
that a long finished history is never read."""

from __future__ import annotations

from typing import Any

from pymongo.monitoring import CommandStartedEvent

from scheduler.status import Status
from scheduler.trainers import Trainers
from tests.support.documents import job_doc
from tests.support.servers import Nats
from tests.support.stores import StartedCommands, listened_store
from tuner.core.states import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, name


class JobFinds(StartedCommands):
    """The filters of the `find` commands a client sends to the jobs collection."""

    def __init__(self) -> None:
        self.filters: list[dict[str, Any]] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command["find"] == "jobs":
            self.filters.append(dict(event.command["filter"]))


async def test_status_counts_the_jobs_that_wait_or_run_and_reads_no_finished_job(
    mongo_uri: str, nats: Nats
) -> None:
    finds = JobFinds()
    async with listened_store(mongo_uri, finds) as store:
        finished = [SUCCEEDED] * 20 + [FAILED] * 3 + [CANCELLED] * 2
        for seed, target in enumerate([QUEUED, QUEUED, RUNNING, *finished]):
            doc = job_doc(9100 + seed)
            assert await store.insert(doc)
            if target != QUEUED:
                assert await store.transition(doc["_id"], 1, RUNNING, {"attempts": 1})
            if target not in (QUEUED, RUNNING):
                assert await store.transition(doc["_id"], 1, target)
        finds.filters.clear()

        response = await Status(nats.nc, nats.js, store, Trainers()).gather()

        assert {c.name: c.reachable for c in response.components} == {
            "database": True,
            "nats": True,
            "jetstream": True,
        }
        assert [(c.state, c.count, c.at_least) for c in response.jobs] == [
            (QUEUED, 2, False),
            (RUNNING, 1, False),
        ]
        assert finds.filters, "the counts were not read from the jobs"
        assert {f["state"] for f in finds.filters} == {name(QUEUED), name(RUNNING)}
