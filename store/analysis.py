"""The sets of SUCCEEDED jobs an analysis reads: by a filter, or a sweep's trials."""

from __future__ import annotations

from dataclasses import dataclass, field

from store import points
from store.documents import Document
from store.jobs import JobStore
from tuner.core.hyperparameters import DATASETS
from tuner.core.states import SUCCEEDED, name

# The most jobs one analysis reads: the latest to end.
MAX_ANALYZED = 10_000
# What an analysis reads of a job.
FIELDS = {"hyperparameters": 1, "result.test_accuracy": 1, "end_time": 1}


@dataclass(frozen=True)
class Selection:
    """SUCCEEDED jobs by `equal` categorical fields (their stored names) and `ranges`
    (min, max; inclusive; None open) of numeric ones."""

    equal: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def datasets(self) -> list[str]:
        return [self.equal["dataset"]] if "dataset" in self.equal else list(DATASETS)

    def keeps(self, hyperparameters: Document) -> bool:
        if any(hyperparameters.get(f) != value for f, value in self.equal.items()):
            return False
        for f, (low, high) in self.ranges.items():
            value = hyperparameters.get(f)
            if value is None or (low is not None and value < low):
                return False
            if high is not None and value > high:
                return False
        return True


async def matching(
    store: JobStore, selection: Selection, limit: int = MAX_ANALYZED
) -> tuple[list[Document], bool]:
    """The latest `limit` jobs to end that match, oldest first, and whether more matched:
    read from the analysis points (store/points.py), not from the jobs."""
    return await points.latest(store, selection.datasets(), selection.keeps, limit)


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
