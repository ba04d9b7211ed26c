"""Pages of an owner's jobs and sweeps (store/pages.py) against a real MongoDB-protocol server:
order, state filters, stability while jobs are added, and how many documents a page reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo.monitoring import CommandStartedEvent, CommandSucceededEvent

from store import pages
from store.documents import now
from store.jobs import JobStore
from store.sweeps import SweepStore, new_sweep
from tests.support.documents import job_doc
from tests.support.stores import StartedCommands, listened_store
from tuner.core.states import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from tuner.v1 import sweep_pb2


class Finds(StartedCommands):
    """The `find` commands a client sends, and how many jobs the server sent back."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []
        self.sent = 0
        self._of_jobs: set[int] = set()

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.commands.append(dict(event.command))
        if event.command.get(event.command_name) == "jobs" or (
            event.command_name == "getMore" and event.command.get("collection") == "jobs"
        ):
            self._of_jobs.add(event.request_id)

    def succeeded(self, event: object) -> None:
        if isinstance(event, CommandSucceededEvent) and event.request_id in self._of_jobs:
            cursor = event.reply.get("cursor", {})
            self.sent += len(cursor.get("firstBatch", cursor.get("nextBatch", [])))


@pytest.fixture
async def watched(mongo_uri: str) -> AsyncIterator[tuple[JobStore, Finds]]:
    """A JobStore on a database of its own, with the finds it sends recorded."""
    finds = Finds()
    async with listened_store(mongo_uri, finds) as store:
        yield store, finds


async def documents_read(store: JobStore, finds: list[dict[str, Any]]) -> int:
    """What the server examined for these finds of `jobs`, by its own explain; each must be an
    index scan."""
    total = 0
    for find in finds:
        if find["find"] != "jobs" or "_id" in find.get("filter", {}):
            continue
        query = {"find": "jobs", "filter": find["filter"], "sort": find.get("sort", {})}
        explained = await store.jobs.database.command(
            {"explain": query, "verbosity": "executionStats"}
        )
        stage = explained["queryPlanner"]["winningPlan"]
        assert "COLLSCAN" not in str(stage), (find["filter"], stage)
        total += int(explained["executionStats"]["totalDocsExamined"])
    return total


async def store_jobs(store: JobStore, seeds: range, owner: str = "alice") -> list[str]:
    ids = []
    for seed in seeds:
        doc = job_doc(seed, owner)
        assert await store.insert(doc)
        ids.append(str(doc["_id"]))
    return ids


async def all_pages(store: JobStore, states: list[int], size: int) -> list[list[str]]:
    seen: list[list[str]] = []
    below = None
    while True:
        page = await store.list_owned("alice", states, size + 1, below)
        seen.append([d["_id"] for d in page[:size]])
        if len(page) <= size:
            return seen
        below = page[size - 1][pages.FIELD]


async def test_pages_go_through_an_owners_jobs_newest_first_once_each(store: JobStore) -> None:
    alice = await store_jobs(store, range(100, 107))
    await store_jobs(store, range(200, 203), owner="bob")
    seen = await all_pages(store, [], 2)
    assert [len(p) for p in seen] == [2, 2, 2, 1]
    assert [j for p in seen for j in p] == alice[::-1]
    assert await store.list_owned("carol", [], 10, None) == []


async def test_a_state_filter_finds_the_few_jobs_in_that_state_however_far_back(
    store: JobStore,
) -> None:
    ids = await store_jobs(store, range(300, 340))
    running = [ids[2], ids[17], ids[31]]
    for job in running:
        assert await store.transition(job, 1, RUNNING, {"attempts": 1})
    assert await store.transition(ids[5], 1, FAILED, {"error": "x"})
    assert [j for p in await all_pages(store, [RUNNING], 2) for j in p] == running[::-1]
    both = await all_pages(store, [FAILED, RUNNING, RUNNING], 3)
    assert [j for p in both for j in p] == [ids[31], ids[17], ids[5], ids[2]]
    queued = [j for p in await all_pages(store, [QUEUED], 7) for j in p]
    assert queued == [j for j in ids[::-1] if j not in running and j != ids[5]]
    assert await store.list_owned("alice", [SUCCEEDED], 10, None) == []


async def test_a_later_page_stays_the_same_while_jobs_are_added(store: JobStore) -> None:
    ids = await store_jobs(store, range(400, 410))
    first = await store.list_owned("alice", [], 4, None)
    below = first[2][pages.FIELD]
    before = [d["_id"] for d in await store.list_owned("alice", [], 4, below)]
    await store_jobs(store, range(410, 415))
    after = [d["_id"] for d in await store.list_owned("alice", [], 4, below)]
    assert before == after == ids[6:2:-1]


async def test_numbers_taken_but_never_stored_are_stepped_over(store: JobStore) -> None:
    ids = await store_jobs(store, range(500, 503))
    for _ in range(25):  # submissions refused after they took a number
        await store.numbers.next("alice")
    ids += await store_jobs(store, range(503, 506))
    assert [d["_id"] for d in await store.list_owned("alice", [], 6, None)] == ids[::-1]


async def test_a_resubmitted_job_becomes_its_new_owners_newest(store: JobStore) -> None:
    ids = await store_jobs(store, range(600, 604))
    await store_jobs(store, range(604, 606), owner="bob")
    assert await store.transition(ids[1], 1, FAILED, {"error": "x"})
    assert await store.requeue(ids[1], 1, "bob")
    assert ids[1] == (await store.list_owned("bob", [], 1, None))[0]["_id"]
    alice = [d["_id"] for d in await store.list_owned("alice", [], 10, None)]
    assert alice == [ids[3], ids[2], ids[0]]


async def test_a_page_reads_about_its_own_documents_however_long_the_history(
    watched: tuple[JobStore, Finds],
) -> None:
    store, finds = watched
    ids = await store_jobs(store, range(1000, 1300))
    for n, job in enumerate(ids):  # 6 RUNNING and 6 FAILED far apart, the rest CANCELLED
        target = {0: RUNNING, 25: FAILED}.get(n % 50, CANCELLED)
        assert await store.transition(job, 1, target, {"attempts": 1})
    # Jobs are numbered 1..300 in order: below 151 is ids[149] and back.
    checks: list[tuple[list[int], int | None, int, int]] = [([], None, 11, 11), ([], 151, 11, 11)]
    checks += [([RUNNING], None, 6, 6), ([FAILED], None, 6, 6), ([CANCELLED], 180, 11, 2 * 11)]
    for states, below, returned, most in checks:
        finds.commands.clear()
        page = await store.list_owned("alice", states, 11, below)
        assert len(page) == returned
        read = await documents_read(store, finds.commands)
        assert returned <= read <= most, (states, below, read)


async def test_a_page_past_a_stretch_of_other_states_is_sent_only_its_own_documents(
    watched: tuple[JobStore, Finds],
) -> None:
    store, finds = watched
    ids = await store_jobs(store, range(2000, 2100))
    for job in ids[:70]:  # the newest 30 stay QUEUED
        assert await store.transition(job, 1, CANCELLED, {"attempts": 1})
    for states, expected in (([CANCELLED], ids[69:58:-1]), ([QUEUED], ids[99:88:-1])):
        finds.sent = 0
        page = await store.list_owned("alice", states, 11, None)
        assert [d["_id"] for d in page] == expected
        assert finds.sent == 11, states


async def test_a_page_just_past_a_stretch_of_other_states_reads_about_its_own_documents(
    watched: tuple[JobStore, Finds],
) -> None:
    store, finds = watched
    ids = await store_jobs(store, range(4000, 4150))
    for job in ids[:100]:  # the newest 50 stay QUEUED, as an owner at its cap leaves them
        assert await store.transition(job, 1, CANCELLED, {"attempts": 1})
    finds.commands.clear()
    page = await store.list_owned("alice", [CANCELLED], 11, None)
    assert [d["_id"] for d in page] == ids[99:88:-1]
    # Its first matches, 5 at the foot of a range, say the state is dense from there on.
    assert await documents_read(store, finds.commands) <= 2 * 11


async def test_a_page_of_active_jobs_submitted_last_reads_only_its_own_documents(
    watched: tuple[JobStore, Finds],
) -> None:
    store, finds = watched
    ids = await store_jobs(store, range(3000, 3060))
    for job in ids[:10]:  # the newest 50 stay QUEUED, two of them RUNNING
        assert await store.transition(job, 1, CANCELLED, {"attempts": 1})
    for job in (ids[40], ids[55]):
        assert await store.transition(job, 1, RUNNING, {"attempts": 1})
    for states in ([QUEUED, RUNNING], [RUNNING, QUEUED, CANCELLED]):
        finds.commands.clear()
        page = await store.list_owned("alice", states, 11, None)
        assert [d["_id"] for d in page] == ids[59:48:-1], states
        assert await documents_read(store, finds.commands) == 11, states
    finds.commands.clear()
    page = await store.list_owned("alice", [QUEUED], 11, None)  # one short of the newest 11
    assert [d["_id"] for d in page] == [j for j in ids[59:47:-1] if j != ids[55]]
    assert await documents_read(store, finds.commands) <= 2 * 11  # not all 47 QUEUED
    finds.commands.clear()
    page = await store.list_owned("alice", [QUEUED], 11, 16)  # past the newest
    assert [d["_id"] for d in page] == [ids[14], ids[13], ids[12], ids[11], ids[10]]
    assert await documents_read(store, finds.commands) == 5


async def test_a_page_of_several_states_read_in_one_range_holds_the_newest_of_each(
    store: JobStore,
) -> None:
    ids = await store_jobs(store, range(3100, 3130))
    for job in ids[10:]:  # the newest 20 are CANCELLED: the active states are read further back
        assert await store.transition(job, 1, CANCELLED, {"attempts": 1})
    for job in ids[3:10]:
        assert await store.transition(job, 1, RUNNING, {"attempts": 1})
    page = await store.list_owned("alice", [QUEUED, RUNNING], 5, None)
    # The 3 QUEUED leave the page short, but the 7 RUNNING beside them are all newer.
    assert [d["_id"] for d in page] == ids[9:4:-1]


async def test_an_owners_newest_sweeps_come_first(sweeps: SweepStore) -> None:
    for n in range(5):
        await sweeps.insert(new_sweep(f"s{n}", sweep_pb2.SweepSpec(), "alice" if n != 2 else "bob"))
    assert [d["_id"] for d in await sweeps.list_owned("alice", 3)] == ["s4", "s3", "s1"]
    assert [d["_id"] for d in await sweeps.list_owned("bob", 3)] == ["s2"]


async def test_jobs_and_sweeps_stored_before_numbering_are_numbered_oldest_first(
    store: JobStore,
) -> None:
    ids = await store_jobs(store, range(700, 705))
    ids += await store_jobs(store, range(705, 707), owner="bob")
    sweeps = SweepStore(store.client, store.jobs.database.name)
    await sweeps.ensure_indexes()
    for n in range(3):
        await sweeps.insert(new_sweep(f"s{n}", sweep_pb2.SweepSpec(), "alice"))
    base = now()
    for n, job in enumerate(ids):  # as stored before: only the time of making orders them
        await store.jobs.update_one(
            {"_id": job},
            {"$set": {"create_time": base + timedelta(seconds=n)}, "$unset": {pages.FIELD: ""}},
        )
    for n in range(3):
        await sweeps.sweeps.update_one(
            {"_id": f"s{n}"},
            {"$set": {"create_time": base + timedelta(seconds=n)}, "$unset": {pages.FIELD: ""}},
        )
    await store.jobs.database.owner_numbers.delete_many({})
    await store.migrations.delete_many({})
    await store.ensure_indexes()
    await sweeps.ensure_indexes()
    assert [d["_id"] for d in await sweeps.list_owned("alice", 5)] == ["s2", "s1", "s0"]
    assert [d["_id"] for d in await store.list_owned("alice", [], 9, None)] == ids[4::-1]
    later = await store_jobs(store, range(707, 708))
    newest = await store.list_owned("alice", [], 2, None)
    assert [d["_id"] for d in newest] == [later[0], ids[4]]
    assert [d["_id"] for d in await store.list_owned("bob", [], 9, None)] == ids[:4:-1]


async def test_a_state_of_a_long_history_is_counted_up_to_a_limit_reading_about_that_many(
    watched: tuple[JobStore, Finds],
) -> None:
    store, finds = watched
    ids = await store_jobs(store, range(1400, 1700))
    base = now()
    for n, job in enumerate(ids):  # a job ended every minute for five hours, 1 in 30 FAILED
        target = FAILED if n % 30 == 0 else CANCELLED
        assert await store.transition(job, 1, target, {"attempts": 1})
        await store.jobs.update_one(
            {"_id": job}, {"$set": {"update_time": base - timedelta(minutes=300 - n)}}
        )
    for state, at_most, count, most in [
        (CANCELLED, 50, 50, 2 * 50),
        (CANCELLED, 1000, 290, 290),
        (FAILED, 1000, 10, 10),
        (RUNNING, 1000, 0, 0),
    ]:
        finds.commands.clear()
        assert await store.count_in_state(state, at_most) == count
        read = await documents_read(store, finds.commands)
        assert count <= read <= most, (state, at_most, read)


async def test_a_lone_old_job_is_counted_under_a_high_limit(store: JobStore) -> None:
    # Found only once the ranges reach back months, one job says the rest lies thousands of
    # years further back: the next range stops at the earliest time instead.
    [job] = await store_jobs(store, range(1700, 1701))
    assert await store.transition(job, 1, FAILED, {"attempts": 1})
    await store.jobs.update_one(
        {"_id": job}, {"$set": {"update_time": now() - timedelta(days=100)}}
    )
    assert await store.count_in_state(FAILED, 10_000) == 1
