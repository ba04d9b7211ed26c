"""`python -m benchmarks.baselines.ray_sweep`: row 6's sweep through Ray Tune.

`tune.Tuner` over `tune.with_resources(trial, {"cpu": 1})`, 16 samples of the space at most 2 at
once (`max_concurrent_trials`), drawn by the default BasicVariantGenerator seeded with the
sweep's seed; the trial is the classic one (classic_trial.py) on --threads torch threads (1 on
2 cores, as each of two trainers), reporting `accuracy`. Ray is local, offline and quiet:
`ray.init(num_cpus=2)` without the dashboard, no usage stats, Tune's console output off; its
results go to a temporary folder.

Ray is not a project dependency: row 6 installs it into benchmarks/.baselines (see
benchmarks/sweeps.py) and runs this module with the project's Python and
PYTHONPATH=benchmarks/.baselines, so torch and the rest come from the project's venv.

Prints one JSON line: wall seconds from before `ray.init` (Ray's start included) to `fit()`
returning, trials completed, best accuracy, and the trials' training + evaluation summed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.baselines import classic_trial
from benchmarks.common import Json


def trial(config: dict[str, Any], root: str = "", threads: int = 1) -> None:
    import torch
    from ray import tune

    torch.set_num_threads(threads)  # as a trainer beside another: the cores split
    result = classic_trial.run(
        "mnist",
        "mlp",
        Path(root),
        0,
        config["learning_rate"],
        config["batch_size"],
        config["optimizer"],
    )
    metrics = {"accuracy": result["accuracy"], "train_eval_s": result["train_s"] + result["eval_s"]}
    tune.report(metrics)


def sweep(trials: int, concurrent: int, seed: int, root: Path, threads: int) -> Json:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    classic_trial.prepare("mnist", root)  # untimed
    space = {
        "learning_rate": tune.loguniform(*classic_trial.LEARNING_RATES),
        "batch_size": tune.choice(list(classic_trial.BATCH_SIZES)),
        "optimizer": tune.choice(list(classic_trial.OPTIMIZERS)),
    }
    with tempfile.TemporaryDirectory(prefix="ray-results-") as results_dir:
        started = time.time()
        ray.init(
            num_cpus=concurrent,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
        try:
            tuner = tune.Tuner(
                tune.with_resources(
                    tune.with_parameters(trial, root=str(root), threads=threads), {"cpu": 1}
                ),
                param_space=space,
                tune_config=tune.TuneConfig(
                    metric="accuracy",
                    mode="max",
                    num_samples=trials,
                    max_concurrent_trials=concurrent,
                    search_alg=BasicVariantGenerator(random_state=seed),
                ),
                run_config=tune.RunConfig(storage_path=results_dir, name="sweep", verbose=0),
            )
            results = tuner.fit()
            wall = time.time() - started
        finally:
            ray.shutdown()
    done = [r for r in results if r.error is None and "accuracy" in r.metrics]
    return {
        "wall_s": wall,
        "wall_from": "before ray.init (Ray's start included) to fit() returning",
        "trials": len(done),
        "best_accuracy": max(r.metrics["accuracy"] for r in done),
        "train_eval_s": sum(r.metrics["train_eval_s"] for r in done),
        "params": [r.config for r in done],
        "ray": ray.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TUNER_DATA_DIR", ".")))
    parser.add_argument("--threads", type=int, default=1, help="torch threads in a trial")
    args = parser.parse_args()
    root = args.data.resolve()
    print(json.dumps(sweep(args.trials, args.concurrent, args.seed, root, args.threads)))


if __name__ == "__main__":
    main()
