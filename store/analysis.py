"""The sets of SUCCEEDED jobs an analysis reads: by a filter, or a sweep's trials."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING

from store.documents import Document
from store.jobs import JobStore
from tuner.core.states import SUCCEEDED, name

# The most jobs one analysis reads: the latest to end. SecantusDB reads every job a filter
# matches whatever the limit, so the bound is on what is kept and sent, not on the scan.
MAX_ANALYZED = 10_000
# What an analysis reads of a job.
FIELDS = {"hyperparameters": 1, "result.test_accuracy": 1, "end_time": 1}
NUMERIC = ("epochs", "learning_rate", "batch_size")
CATEGORICAL = ("dataset", "model", "optimizer")


def job_query(
    equal: dict[str, str], ranges: dict[str, tuple[float | None, float | None]]
) -> dict[str, Any]:
    """The condition on SUCCEEDED jobs: `equal` on categorical fields (by their stored names),
    `ranges` (min, max; inclusive; None open) on numeric ones."""
    query: dict[str, Any] = {"state": name(SUCCEEDED)}
    for field, value in equal.items():
        query[f"hyperparameters.{field}"] = value
    for field, (low, high) in ranges.items():
        bounds: dict[str, float] = {}
        if low is not None:
            bounds["$gte"] = low
        if high is not None:
            bounds["$lte"] = high
        if bounds:
            query[f"hyperparameters.{field}"] = bounds
    return query


async def matching(
    store: JobStore, query: dict[str, Any], limit: int = MAX_ANALYZED
) -> tuple[list[Document], bool]:
    """The latest `limit` jobs to end that match, oldest first, and whether more matched."""
    cursor = store.jobs.find(query, FIELDS).sort([("end_time", DESCENDING), ("_id", DESCENDING)])
    docs = await cursor.limit(limit + 1).to_list()
    truncated = len(docs) > limit
    return docs[:limit][::-1], truncated


async def trial_jobs(store: JobStore, sweep: Document) -> list[tuple[int, Document]]:
    """The SUCCEEDED jobs of a sweep's trials with their trial numbers, in trial order.

    A sweep holds at most 1,000 trials; a job run by two of them (reused) counts once,
    under its first trial."""
    numbers: dict[str, int] = {}
    for trial in sweep.get("trials", []):
        numbers.setdefault(str(trial["job_id"]), int(trial["number"]))
    if not numbers:
        return []
    cursor = store.jobs.find({"_id": {"$in": list(numbers)}, "state": name(SUCCEEDED)}, FIELDS)
    docs = await cursor.to_list()
    return sorted(((numbers[str(d["_id"])], d) for d in docs), key=lambda pair: pair[0])
