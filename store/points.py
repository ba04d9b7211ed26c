"""Analysis points: each SUCCEEDED job's hyperparameters and accuracy, filed in chunks.

An analysis reads thousands of jobs; SecantusDB reads a job document in about 0.2 ms, sort
or not, so 10,000 jobs cost 2 s. The points are a compact copy, CHUNK_SIZE to a document:
`analysis_points` holds, per dataset, a counter {_id: DATASET, filed: n} and chunks
{_id: "DATASET NNNNNNNN", dataset, seq, points: {JOB_ID: {e: end_time, h: hyperparameters,
a: test_accuracy}}}, in the order the jobs were filed. The latest N of a dataset are then
N / CHUNK_SIZE documents read by _id, on SecantusDB and MongoDB alike: no sort, no scan.

Filing is two writes: a step of the counter, then the point into the chunk the step falls
in. Filing a job again (a redelivered success, a second replica, the migration) may put it
into a second chunk; readers keep one point a job, so a repeat costs a place, not a result.
Chunks stay small (a chunk is rewritten whole by each filing into it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from store import housekeeping
from store.documents import Document
from store.jobs import JobStore
from tuner.core.states import SUCCEEDED, name

CHUNK_SIZE = 100
READ_BATCH = 20  # chunks read in one query
MIGRATION = "analysis-points"
STEP_TRIES = 5


def chunk_id(dataset: str, seq: int) -> str:
    return f"{dataset} {seq:08d}"


def point(doc: Document) -> Document:
    return {"e": doc["end_time"], "h": doc["hyperparameters"], "a": doc["result"]["test_accuracy"]}


def as_job(job_id: str, filed: Document) -> Document:
    """A point in the shape of the job fields an analysis reads."""
    return {
        "_id": job_id,
        "hyperparameters": filed["h"],
        "result": {"test_accuracy": filed["a"]},
        "end_time": filed["e"],
    }


async def file_point(store: JobStore, doc: Document) -> None:
    """File a SUCCEEDED job's point."""
    dataset = doc["hyperparameters"]["dataset"]
    seq = (await _step(store, dataset) - 1) // CHUNK_SIZE
    await _into_chunk(store, dataset, seq, [doc])


async def _into_chunk(store: JobStore, dataset: str, seq: int, docs: list[Document]) -> None:
    """The points of `docs` set into chunk `seq` of `dataset`, made if it is not there."""
    await store.points.update_one(
        {"_id": chunk_id(dataset, seq)},
        {
            "$set": {f"points.{doc['_id']}": point(doc) for doc in docs},
            "$setOnInsert": {"dataset": dataset, "seq": seq},
        },
        upsert=True,
    )


async def _step(store: JobStore, dataset: str) -> int:
    """The dataset's counter, one step on."""
    for _ in range(STEP_TRIES):
        try:
            counter = await store.points.find_one_and_update(
                {"_id": dataset}, {"$inc": {"filed": 1}}, upsert=True,
                return_document=ReturnDocument.AFTER,
            )  # fmt: skip
        except DuplicateKeyError:  # two first filings at once: the other made the counter
            continue
        # None where a retried upsert found no document to return (seen after a stall).
        if counter is not None:
            return int(counter["filed"])
    raise RuntimeError(f"the analysis points' counter of {dataset} did not step")


async def latest(
    store: JobStore, datasets: Iterable[str], keep: Callable[[Document], bool], limit: int
) -> tuple[list[Document], bool]:
    """The latest `limit` points whose hyperparameters `keep` accepts, as jobs, oldest first,
    and whether more matched."""
    found: list[Document] = []
    for dataset in datasets:
        found.extend(await _latest_of(store, dataset, keep, limit + 1))
    found.sort(key=lambda d: (d["end_time"], d["_id"]))
    return found[-limit:] if limit else [], len(found) > limit


async def _latest_of(
    store: JobStore, dataset: str, keep: Callable[[Document], bool], wanted: int
) -> list[Document]:
    """At least `wanted` kept points of `dataset` (all there are, if fewer), one a job,
    newest chunks first, whole chunks at a time."""
    counter = await store.points.find_one({"_id": dataset})
    if counter is None:
        return []
    found: dict[str, Document] = {}
    seq = (int(counter["filed"]) - 1) // CHUNK_SIZE
    while seq >= 0 and len(found) < wanted:
        ids = [chunk_id(dataset, s) for s in range(seq, max(seq - READ_BATCH, -1), -1)]
        for chunk in await store.points.find({"_id": {"$in": ids}}).to_list():
            for job_id, filed in chunk.get("points", {}).items():
                if keep(filed["h"]):
                    found[job_id] = as_job(job_id, filed)
        seq -= READ_BATCH
    return list(found.values())


async def migrate(store: JobStore) -> None:
    """Once per database: file the points of the SUCCEEDED jobs from before the points, a
    chunk's worth at a time in the order they ended (a job filed meanwhile is filed twice,
    and read once)."""
    await housekeeping.once(store.migrations, MIGRATION, lambda: _file_unfiled(store))


async def _file_unfiled(store: JobStore) -> None:
    unfiled = {"state": name(SUCCEEDED), "result": {"$ne": None}}
    fields = {"end_time": 1, "hyperparameters": 1, "result.test_accuracy": 1}
    docs = await store.jobs.find(unfiled, fields).to_list()
    docs.sort(key=lambda d: (d["end_time"], d["_id"]))
    by_dataset: dict[str, list[Document]] = {}
    for doc in docs:
        by_dataset.setdefault(doc["hyperparameters"]["dataset"], []).append(doc)
    for dataset, jobs in by_dataset.items():
        for first in range(0, len(jobs), CHUNK_SIZE):
            batch = jobs[first : first + CHUNK_SIZE]
            await _into_chunk(store, dataset, await _reserve_chunk(store, dataset), batch)


async def _reserve_chunk(store: JobStore, dataset: str) -> int:
    """A whole chunk of `dataset` of its own, after every chunk begun: its seq."""
    while True:
        counter = await store.points.find_one({"_id": dataset})
        filed = 0 if counter is None else int(counter["filed"])
        seq = -(-filed // CHUNK_SIZE)  # the first chunk nobody has begun
        try:
            moved = await store.points.update_one(
                {"_id": dataset, "filed": filed},
                {"$set": {"filed": (seq + 1) * CHUNK_SIZE}},
                upsert=counter is None,
            )
        except DuplicateKeyError:  # another made the counter first
            continue
        if moved.modified_count == 1 or moved.upserted_id is not None:
            return seq
