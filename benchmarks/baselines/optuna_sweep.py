"""`python -m benchmarks.baselines.optuna_sweep`: row 6's sweep as Optuna's users write it.

Two worker processes (this module with --worker) share a study in one JournalStorage file
(JournalFileBackend), each loading it with `create_study(load_if_exists=True)` and running
`study.optimize(objective, n_trials=8)`. The objective is the classic trial (classic_trial.py:
torchvision MNIST, DataLoader, the project's MLP, 1 epoch, a test pass) on --threads torch
threads (1 on 2 cores, as each of two trainers). Each worker's RandomSampler is seeded with the
sweep's seed plus its index: the same seed in both would draw the same trials twice.

Prints one JSON line: wall seconds from before the worker processes start (their start, the
imports and the study's creation included) to the last trial done, trials completed, best
accuracy, and the trials' training + evaluation seconds summed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks.baselines import classic_trial
from benchmarks.common import REPO, Json

STUDY = "bench-sweep"
MODULE = "benchmarks.baselines.optuna_sweep"


def storage(journal: Path) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(journal)))


def worker(index: int, trials: int, seed: int, journal: Path, root: Path, threads: int) -> None:
    import optuna
    import torch

    torch.set_num_threads(threads)  # as a trainer beside another: the cores split
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")

    def objective(trial: optuna.Trial) -> float:
        result = classic_trial.run(
            "mnist",
            "mlp",
            root,
            0,
            trial.suggest_float("learning_rate", *classic_trial.LEARNING_RATES, log=True),
            trial.suggest_categorical("batch_size", classic_trial.BATCH_SIZES),
            trial.suggest_categorical("optimizer", classic_trial.OPTIMIZERS),
        )
        trial.set_user_attr("train_eval_s", result["train_s"] + result["eval_s"])
        return float(result["accuracy"])

    study = optuna.create_study(
        study_name=STUDY,
        storage=storage(journal),
        sampler=optuna.samplers.RandomSampler(seed=seed + index),
        direction="maximize",
        load_if_exists=True,
    )
    study.optimize(objective, n_trials=trials)


def split(trials: int, workers: int) -> list[int]:
    """n_trials for each worker: 8 and 8 for 16."""
    return [trials // workers + (index < trials % workers) for index in range(workers)]


def sweep(trials: int, workers: int, seed: int, journal: Path, root: Path, threads: int) -> Json:
    import optuna

    classic_trial.prepare("mnist", root)  # untimed
    journal.unlink(missing_ok=True)
    started = time.time()
    shared = ["--seed", str(seed), "--journal", str(journal), "--data", str(root)]
    shared += ["--threads", str(threads)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", MODULE, "--worker", str(index), *shared, "--trials", str(n)],
            cwd=REPO,
            stdout=sys.stderr,  # the one JSON line on stdout is the parent's
        )
        for index, n in enumerate(split(trials, workers))
    ]
    codes = [process.wait() for process in processes]
    if any(codes):
        raise SystemExit(f"optuna workers exited with {codes}")
    study = optuna.load_study(study_name=STUDY, storage=storage(journal))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    ended = max(t.datetime_complete.timestamp() for t in done if t.datetime_complete)
    return {
        "wall_s": ended - started,
        "wall_from": f"before {workers} worker processes start (imports, study load included)",
        "trials": len(done),
        "best_accuracy": max(t.value for t in done if t.value is not None),
        "train_eval_s": sum(t.user_attrs["train_eval_s"] for t in done),
        "params": [t.params for t in done],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TUNER_DATA_DIR", ".")))
    parser.add_argument("--threads", type=int, default=1, help="torch threads in a trial")
    parser.add_argument("--worker", type=int, default=-1, help="(internal) run one worker")
    args = parser.parse_args()
    root = args.data.resolve()
    if args.worker >= 0:
        worker(args.worker, args.trials, args.seed, args.journal, root, args.threads)
        return
    sweep_args = (args.trials, args.workers, args.seed, args.journal, root, args.threads)
    print(json.dumps(sweep(*sweep_args)))


if __name__ == "__main__":
    main()
