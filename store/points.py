"""Analysis points: each SUCCEEDED job's hyperparameters and accuracy, filed in chunks.

An analysis reads thousands of jobs; SecantusDB reads a job document in about 0.2 ms, sort
or not, so 10,000 jobs cost 2 s. The points are a compact copy, CHUNK_SIZE to a document:
`analysis_points` holds, per dataset, a counter {_id: DATASET, filed: n} and chunks
{_id: "DATASET NNNNNNNN", dataset, seq, points: {JOB_ID: {e: end_time, h: hyperparameters,
a: test_accuracy}}}, in the order the jobs were filed. The latest N of a dataset are then
N / CHUNK_SIZE documents read by _id, on SecantusDB and MongoDB alike: no sort, no scan.

A job's chunk is chosen once and kept on the job (`analysis_chunk`, set only where absent),
so filing it again (a redelivered event, a second replica) writes the same point into the
same chunk. A counter step whose job then lost the race leaves its chunk one point short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from store.documents import Document, now
from store.jobs import JobStore
from tuner.core.states import SUCCEEDED, name

CHUNK_SIZE = 500
READ_BATCH = 8  # chunks read in one query
MIGRATION = "analysis-points"


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
    """File a SUCCEEDED job's point; idempotent."""
    dataset = doc["hyperparameters"]["dataset"]
    seq = doc.get("analysis_chunk")
    if seq is None:
        counter = await store.points.find_one_and_update(
            {"_id": dataset}, {"$inc": {"filed": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER,
        )  # fmt: skip
        assert counter is not None  # an upsert returns the document after
        mine = (int(counter["filed"]) - 1) // CHUNK_SIZE
        chose = await store.jobs.update_one(
            {"_id": doc["_id"], "analysis_chunk": None}, {"$set": {"analysis_chunk": mine}}
        )
        if chose.modified_count == 1:
            seq = mine
        else:  # another filing of this job chose first
            chosen = await store.jobs.find_one({"_id": doc["_id"]}, {"analysis_chunk": 1})
            seq = mine if chosen is None else chosen["analysis_chunk"]
    await store.points.update_one(
        {"_id": chunk_id(dataset, int(seq))},
        {
            "$set": {f"points.{doc['_id']}": point(doc)},
            "$setOnInsert": {"dataset": dataset, "seq": int(seq)},
        },
        upsert=True,
    )


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
    """At least `wanted` kept points of `dataset` (all there are, if fewer), newest chunks
    first, whole chunks at a time."""
    counter = await store.points.find_one({"_id": dataset})
    if counter is None:
        return []
    found: list[Document] = []
    seq = (int(counter["filed"]) - 1) // CHUNK_SIZE
    while seq >= 0 and len(found) < wanted:
        ids = [chunk_id(dataset, s) for s in range(seq, max(seq - READ_BATCH, -1), -1)]
        for chunk in await store.points.find({"_id": {"$in": ids}}).to_list():
            for job_id, filed in chunk.get("points", {}).items():
                if keep(filed["h"]):
                    found.append(as_job(job_id, filed))
        seq -= READ_BATCH
    return found


async def migrate(store: JobStore) -> None:
    """Once per database: file the points of the SUCCEEDED jobs that have none, a chunk's worth
    at a time in the order they ended. Safe beside a replica that files jobs meanwhile: a job
    goes into the migration's chunk only if no filing chose one for it first."""
    if await store.migrations.find_one({"_id": MIGRATION}) is not None:
        return
    unfiled = {"state": name(SUCCEEDED), "analysis_chunk": None, "result": {"$ne": None}}
    fields = {"end_time": 1, "hyperparameters": 1, "result.test_accuracy": 1}
    docs = await store.jobs.find(unfiled, fields).to_list()
    docs.sort(key=lambda d: (d["end_time"], d["_id"]))
    by_dataset: dict[str, list[Document]] = {}
    for doc in docs:
        by_dataset.setdefault(doc["hyperparameters"]["dataset"], []).append(doc)
    for dataset, jobs in by_dataset.items():
        for first in range(0, len(jobs), CHUNK_SIZE):
            await _file_chunk(store, dataset, jobs[first : first + CHUNK_SIZE])
    await store.migrations.update_one({"_id": MIGRATION}, {"$set": {"done": now()}}, upsert=True)


async def _file_chunk(store: JobStore, dataset: str, jobs: list[Document]) -> None:
    seq = await _reserve_chunk(store, dataset)
    ids = [doc["_id"] for doc in jobs]
    await store.jobs.update_many(
        {"_id": {"$in": ids}, "analysis_chunk": None}, {"$set": {"analysis_chunk": seq}}
    )
    ours = await store.jobs.find({"_id": {"$in": ids}, "analysis_chunk": seq}, {"_id": 1}).to_list()
    mine = {d["_id"] for d in ours}
    points = {f"points.{doc['_id']}": point(doc) for doc in jobs if doc["_id"] in mine}
    if points:
        await store.points.update_one(
            {"_id": chunk_id(dataset, seq)},
            {"$set": points, "$setOnInsert": {"dataset": dataset, "seq": seq}},
            upsert=True,
        )


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
