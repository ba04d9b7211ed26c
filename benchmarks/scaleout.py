"""Row 4: jobs per hour with 1 and with 2 trainers on this machine, on short MLP jobs."""

from __future__ import annotations

import asyncio
import time

from benchmarks.cluster import BenchStack, Run, mlp, submit_and_watch
from benchmarks.common import Json, Section
from tuner.client import TunerClient

JOBS = 16
BATCH = 256


async def batch_of_jobs(bench: BenchStack, seeds: range) -> tuple[float, list[Run]]:
    """Submit every job at once and wait for all; seconds from the first submit to the last end."""
    async with TunerClient(bench.address, "bench-scale") as client:
        started = time.time()
        runs = await asyncio.gather(*(submit_and_watch(client, mlp(s, 1, BATCH)) for s in seeds))
    return max(r.watched.ended_at for r in runs) - started, list(runs)


async def measure(bench: BenchStack, trainers: int, first_seed: int) -> Json:
    if len(bench.trainers) != trainers:
        bench.stop_trainers()
        bench.start_trainers(trainers)
    # One job per trainer first, so that every trainer has its data loaded.
    await batch_of_jobs(bench, range(first_seed, first_seed + trainers))
    wall, runs = await batch_of_jobs(bench, range(first_seed + 100, first_seed + 100 + JOBS))
    bench.jobs_trained += trainers + JOBS
    names = [r.watched.first("started") for r in runs]
    by_trainer: dict[str, int] = {}
    for found in names:
        name = found[1].started.trainer if found else "?"
        by_trainer[name] = by_trainer.get(name, 0) + 1
    train = [r.watched.first("succeeded") for r in runs]
    train_s = [
        (t[1].succeeded.training_duration.ToNanoseconds()) / 1e9 for t in train if t is not None
    ]
    return {
        "trainers": trainers,
        "threads_each": bench.threads_per_trainer(trainers),
        "jobs": JOBS,
        "wall_s": wall,
        "jobs_per_hour": JOBS / wall * 3600,
        "mean_training_s": sum(train_s) / len(train_s),
        "jobs_by_trainer": by_trainer,
    }


async def run(bench: BenchStack) -> Section:
    results = [await measure(bench, 1, 4_000), await measure(bench, 2, 5_000)]
    section = Section(
        f"Row 4: scale-out, {JOBS} MLP jobs (MNIST, 1 epoch, batch {BATCH}) submitted at once",
        [
            "trainers",
            "torch threads each",
            "wall s",
            "jobs/hour",
            "ratio",
            "mean training s",
            "jobs per trainer",
        ],
    )
    for r in results:
        section.rows.append(
            [
                str(r["trainers"]),
                str(r["threads_each"]),
                f"{r['wall_s']:.1f}",
                f"{r['jobs_per_hour']:,.0f}",
                f"{r['jobs_per_hour'] / results[0]['jobs_per_hour']:.2f}x",
                f"{r['mean_training_s']:.2f}",
                " ".join(str(v) for v in sorted(r["jobs_by_trainer"].values())),
            ]
        )
    section.notes.append(
        "every trainer ran one job first (data loaded); wall = first submit to the last "
        "SUCCEEDED at the client; trainers split the cores (TUNER_TORCH_THREADS)"
    )
    section.data = {"scale_out": results}
    return section
