"""Row 2: a 1-epoch MLP job through the whole stack against the same training in-process.

The in-process side is `python -m benchmarks.overhead SEED`: data.load + training.train, in a
process of its own with the trainer's thread setting, while the stack stands idle.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from benchmarks.cluster import BenchStack, Run, mlp, seconds, submit_and_watch
from benchmarks.common import Json, Section, data_root, ms, run_worker
from tuner.client import TunerClient

FIRST_SEED, SECOND_SEED = 2_001, 2_002
TARGET = 1.10


def in_process(seed: int, root: Path) -> Json:
    import torch

    from trainer import data, training

    threads = int(os.environ.get("TUNER_TORCH_THREADS", "0"))
    if threads:
        torch.set_num_threads(threads)
    hp = mlp(seed)
    cpu = torch.device("cpu")
    started = time.perf_counter()
    loaded = data.load(hp.dataset, root, cpu)
    load_s = time.perf_counter() - started
    result = training.train(hp, loaded, cpu, lambda _: None, lambda _: None, lambda: False)
    return {
        "load_s": load_s,
        "train_s": result.training_duration.ToNanoseconds() / 1e9,
        "eval_s": result.evaluation_duration.ToNanoseconds() / 1e9,
        "whole_s": time.perf_counter() - started,
        "accuracy": result.test_accuracy,
    }


def split(run: Run) -> Json:
    """Where a job's time at the client goes, from client clocks and the trainer's event times."""
    watched = run.watched
    started = watched.first("started")
    succeeded = watched.first("succeeded")
    if started is None or succeeded is None:
        raise RuntimeError(f"job {watched.job_id}: no started/succeeded event")
    started_at, succeeded_at = seconds(started[1].time), seconds(succeeded[1].time)
    result = succeeded[1].succeeded
    train_s = result.training_duration.ToNanoseconds() / 1e9
    eval_s = result.evaluation_duration.ToNanoseconds() / 1e9
    return {
        "total_s": run.total,
        "submit_s": run.submit_ended - run.submit_started,
        # submit, then JetStream and the trainer's fetch (it may start before the reply arrives)
        "to_start_s": started_at - run.submit_started,
        # data load (first job), model build, flushing the last progress events
        "before_and_after_training_s": succeeded_at - started_at - train_s - eval_s,
        "train_s": train_s,
        "eval_s": eval_s,
        "event_path_s": run.watched.ended_at - succeeded_at,  # recorded, announced, streamed
        "accuracy": result.test_accuracy,
    }


async def run(bench: BenchStack) -> Section:
    root = data_root()
    threads = bench.threads_per_trainer(len(bench.trainers))
    env = dict(os.environ, TUNER_DATA_DIR=str(root), TUNER_TORCH_THREADS=str(threads))
    fresh = bench.jobs_trained == 0
    baseline = {
        seed: run_worker("benchmarks.overhead", [str(seed)], env=env)
        for seed in (FIRST_SEED, SECOND_SEED)
    }
    async with TunerClient(bench.address, "bench") as client:
        jobs = [split(await submit_and_watch(client, mlp(seed))) for seed in baseline]
    bench.jobs_trained += 2
    section = Section(
        "Row 2: a 1-epoch MLP job (MNIST, batch 64) through the stack vs in-process",
        [
            "job",
            "stack s",
            "in-process s",
            "ratio",
            "submit",
            "submit->started",
            "load+build",
            "train+eval",
            "event path",
        ],
    )
    names = ["first job" if fresh else "a job", "second job"]
    for name, job, (seed, alone) in zip(names, jobs, baseline.items(), strict=True):
        section.rows.append(
            [
                f"{name} (seed {seed})",
                f"{job['total_s']:.2f}",
                f"{alone['whole_s']:.2f}",
                f"{job['total_s'] / alone['whole_s']:.2f}x (target <= {TARGET})",
                ms(job["submit_s"]),
                ms(job["to_start_s"]),
                ms(job["before_and_after_training_s"]),
                f"{job['train_s'] + job['eval_s']:.2f} s "
                f"(alone {alone['train_s'] + alone['eval_s']:.2f})",
                ms(job["event_path_s"]),
            ]
        )
    section.notes += [
        "process start is excluded: the stack is up and the trainer idle before the job "
        f"({threads} torch thread(s), as in-process); the first job of a trainer loads the data",
        "submit->started = submit call to the trainer's 'started' event; load+build = "
        "trainer's started to succeeded minus train+eval (data load, model build, flushing "
        "progress); event path = trainer's succeeded event to the SUCCEEDED state at the client",
    ]
    section.data = {"jobs": jobs, "in_process": list(baseline.values()), "threads": threads}
    return section


if __name__ == "__main__":
    print(json.dumps(in_process(int(sys.argv[1]), Path(os.environ["TUNER_DATA_DIR"]))))
