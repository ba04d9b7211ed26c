"""Newest-first pages of an owner's jobs or sweeps that read O(page) documents, however long
the owner's history.

SecantusDB reads every document a filter matches, sort and limit or not (DESIGN.md), so a page
cannot be "sort by time, limit N" over all of an owner's history. Instead each owner's
documents of a kind are numbered 1, 2, 3, ... as they are made (`Numbers`, the field
`owner_seq`), and a page is read as ranges of that number through an (owner, [state,]
owner_seq) index: the `limit` numbers below the cursor first, then ranges further back as
wide as the density seen says the rest of the page needs, until it is full. A range of width w
holds at most w documents, so an unfiltered page reads its own documents, and a page filtered
by state reads about what it returns plus a cheap query for each range that held too few. On
MongoDB these are the same index range scans. Numbers only grow, so a page read later is the
same page: new documents go above every cursor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pymongo
from pymongo import DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from store.documents import Document

FIELD = "owner_seq"
# A walk of a whole history (numbering old documents, ranking them all) is one query that
# SecantusDB answers only once it has read every match: far past the client's 15 s socket
# timeout at a few hundred thousand jobs. Such a walk runs under this deadline instead.
WALK_SECONDS = 3600.0


class Numbers:
    """The last number given to each owner's documents of a kind: {_id: "KIND/OWNER", last}."""

    def __init__(self, counters: AsyncCollection[Document], kind: str) -> None:
        self._counters = counters
        self._kind = kind

    def _key(self, owner: str) -> str:
        return f"{self._kind}/{owner}"

    async def last(self, owner: str) -> int:
        doc = await self._counters.find_one({"_id": self._key(owner)})
        return 0 if doc is None else int(doc["last"])

    async def next(self, owner: str) -> int:
        """A number above every number the owner's documents of this kind have."""
        return await self.take(owner, 1)

    async def take(self, owner: str, count: int) -> int:
        """The first of `count` consecutive numbers above every number the owner's documents
        of this kind have.

        A read and a conditional write (SecantusDB's find_one_and_update scans the whole
        collection); the write fails only when another scheduler took numbers meanwhile, so
        the loop ends. A number taken for a document that is then not stored is a gap, which
        a page steps over.
        """
        key = self._key(owner)
        while True:
            doc = await self._counters.find_one({"_id": key})
            if doc is None:
                try:
                    await self._counters.insert_one({"_id": key, "last": count})
                except DuplicateKeyError:
                    continue
                return 1
            last = int(doc["last"])
            taken = await self._counters.update_one(
                {"_id": key, "last": last}, {"$set": {"last": last + count}}
            )
            if taken.modified_count == 1:
                return last + 1

    async def at_least(self, owner: str, last: int) -> None:
        """Raise the owner's last number to `last` if it is below (for numbering old documents)."""
        await self._counters.update_one(
            {"_id": self._key(owner)}, {"$max": {"last": last}}, upsert=True
        )


def further(spanned: float, wanted: int, found: int) -> float:
    """How much further back to read, `found` of `wanted` having been found over `spanned`:
    as far as that density says the rest needs, with a quarter more. `found` > 0."""
    return spanned * (wanted - found) / found * 1.25


def matched_over(found: list[Document], below: int, high: int) -> float:
    """The stretch of numbers that `found` (read from `below` down to `high`, newest first)
    says its density over: from its newest match down, with the gap above it one match
    stands for, at most all that was read. A stretch of other documents above the first match
    (an owner's queued jobs over its finished ones) would otherwise read as a sparse state and
    widen the next range far past the page."""
    from_newest = int(found[0][FIELD]) - high + 1
    return min(below - high, from_newest * (len(found) + 1) / len(found))


def newest_first(docs: list[Document]) -> list[Document]:
    return sorted(docs, key=lambda d: int(d[FIELD]), reverse=True)


async def newest(
    collection: AsyncCollection[Document],
    conditions: Sequence[dict[str, Any]],
    below: int,
    limit: int,
    floor: int = 1,
    capped: bool = False,
) -> list[Document]:
    """Up to `limit` documents matching any of `conditions` (each of equalities an index
    starts with) whose number is below `below` and not below `floor`, highest number first.

    The next range is as wide as the density of the matches so far (`matched_over`) says the
    rest of the page needs, with a quarter more; four times as wide while nothing was found.
    A range reads only the documents it holds that match, so a sparse state costs more
    queries, not more reads; and it returns no more than the page still lacks, however wide
    it grew. Each range asks each condition apart: SecantusDB answers a `$in` beside a range
    of numbers by scanning the whole collection.

    `capped` says the conditions match few documents whatever the history (an owner's QUEUED
    and RUNNING jobs, which the scheduler caps): after the `limit` numbers below `below` and
    one range their density sizes, the rest is read in one range, not in ever wider ones.
    """
    found: list[Document] = []
    width = limit
    high = below
    while high > floor and len(found) < limit:
        first = high == below
        low = max(floor, high - width)
        # What the page lacks before this range: each condition may fill all of it.
        lacking = limit - len(found)
        for condition in conditions:
            query = {**condition, FIELD: {"$gte": low, "$lt": high}}
            cursor = collection.find(query).sort(FIELD, DESCENDING).limit(lacking)
            found += await cursor.to_list()
        if len(conditions) > 1:
            found = newest_first(found)
        high = low
        if capped and not (first and found):
            width = high
        elif found:
            width = math.ceil(further(matched_over(found, below, high), limit, len(found))) + 1
        else:
            width *= 4
    return found[:limit]


async def number_old(collection: AsyncCollection[Document], numbers: Numbers) -> None:
    """Number the documents stored before they had numbers, each owner's oldest first.

    One walk of those documents (owner, create_time). Each owner's last number is raised
    first, so a document a running scheduler numbers meanwhile goes above them; schedulers
    that start together number the same documents the same way.
    """
    with pymongo.timeout(WALK_SECONDS):
        fields = {"owner": 1, "create_time": 1}
        unnumbered = await collection.find({FIELD: {"$exists": False}}, fields).to_list()
        by_owner: dict[str, list[Document]] = {}
        for doc in unnumbered:
            by_owner.setdefault(doc["owner"], []).append(doc)
        for owner, docs in by_owner.items():
            await numbers.at_least(owner, len(docs))
            docs.sort(key=lambda d: (d["create_time"], d["_id"]))
            numbering = [
                UpdateOne({"_id": d["_id"], FIELD: {"$exists": False}}, {"$set": {FIELD: n}})
                for n, d in enumerate(docs, start=1)
            ]
            for start in range(0, len(numbering), 1000):
                await collection.bulk_write(numbering[start : start + 1000], ordered=False)
