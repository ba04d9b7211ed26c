"""Analysis on a real stack: a grid sweep of 6 MLP jobs, then `tuner analyze`, `tuner compare`
and `tuner export` through the scheduler's AnalysisService."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from tests.support.models import tuner_cli
from tests.support.stack import RunningStack
from tuner.client import TunerClient
from tuner.sweep_spec import parse
from tuner.v1 import sweep_pb2

GRID = """
    name: analysis-grid
    strategy: grid
    max_trials: 6
    parallelism: 2
    space:
      epochs: [1]
      learning_rate: [0.0005, 0.002, 0.01]
      batch_size: [512]
      models: [mlp]
      optimizers: [sgd, adam]
      seed: [7701]
"""


async def test_a_grid_is_analyzed_compared_and_exported(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    async with TunerClient(running_stack.address, "analyst") as client:
        created = await client.create_sweep(parse(GRID))
        sweep = [s async for s in client.watch_sweep(created.id)][-1]
    assert sweep.state == sweep_pb2.SWEEP_STATE_SUCCEEDED and len(sweep.trials) == 6
    best = sweep.trials[sweep.best_trial - 1]
    server = ("--server", running_stack.address, "--user", "analyst")

    ran = await tuner_cli("analyze", *server, "--sweep", sweep.id, "--json")
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    assert answer["count"] == 6
    assert answer["best_job_id"] == best.job_id
    assert answer["best_test_accuracy"] == pytest.approx(best.test_accuracy)
    defined = {i["name"] for i in answer["importances"] if i.get("defined")}
    assert defined == {"learning_rate", "optimizer"}
    assert sorted(p["trial_number"] for p in answer["points"]) == [1, 2, 3, 4, 5, 6]

    pair = [sweep.trials[0].job_id, sweep.trials[1].job_id]
    ran = await tuner_cli("compare", *server, *pair, "--json")
    assert ran.returncode == 0, ran.stderr
    jobs = json.loads(ran.stdout)["jobs"]
    assert [j["id"] for j in jobs] == pair and all(len(j["history"]) == 1 for j in jobs)
    ran = await tuner_cli("compare", *server, *pair)
    assert ran.returncode == 0 and ran.stdout.splitlines()[0].split() == [i[:12] for i in pair]

    out = tmp_path / "grid.log"
    ran = await tuner_cli(
        "export", *server, "--format", "optuna", "--sweep", sweep.id, "-o", str(out)
    )
    assert ran.returncode == 0, ran.stderr
    study = optuna.load_study(study_name=None, storage=JournalStorage(JournalFileBackend(str(out))))
    by_job = {t.user_attrs["job_id"]: t for t in study.trials}
    assert set(by_job) == {t.job_id for t in sweep.trials}
    for trial in sweep.trials:
        exported = by_job[trial.job_id]
        assert exported.value == pytest.approx(trial.test_accuracy)
        assert exported.intermediate_values == {1: pytest.approx(trial.test_accuracy)}
        assert exported.params["learning_rate"] == trial.hyperparameters.learning_rate
    assert study.best_trial.user_attrs["job_id"] == best.job_id
