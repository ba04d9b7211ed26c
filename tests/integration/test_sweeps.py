"""Sweeps on a real stack: grids, budgets, reuse of finished jobs, pruning, restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tests.support.hyperparameters import mlp
from tests.support.jobs import wait_for
from tests.support.stack import RunningStack, StartStack
from tuner.client import TunerClient
from tuner.sweep_spec import parse
from tuner.v1 import job_pb2, sweep_pb2

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
ACTIVE = (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING)


@pytest.fixture
async def client(running_stack: RunningStack) -> AsyncIterator[TunerClient]:
    async with TunerClient(running_stack.address, "sweeper") as c:
        yield c


async def run(client: TunerClient, spec: sweep_pb2.SweepSpec) -> list[sweep_pb2.Sweep]:
    """Every snapshot a watcher sees, until the sweep ends."""
    sweep = await client.create_sweep(spec)
    return [s async for s in client.watch_sweep(sweep.id)]


def configurations(sweep: sweep_pb2.Sweep) -> set[tuple[float, int]]:
    return {(t.hyperparameters.learning_rate, t.hyperparameters.batch_size) for t in sweep.trials}


async def test_a_grid_sweep_runs_exactly_its_grid(client: TunerClient) -> None:
    spec = parse("""
        name: grid
        strategy: grid
        max_trials: 100
        parallelism: 2
        space:
          epochs: [1]
          learning_rate: {min: 0.001, max: 0.004, log: true, grid_points: 3}
          batch_size: [256, 512]
          models: [mlp]
          seed: [3101]
    """)
    snapshots = await run(client, spec)
    final = snapshots[-1]
    assert final.state == sweep_pb2.SWEEP_STATE_SUCCEEDED
    assert configurations(final) == {(lr, bs) for lr in (0.001, 0.002, 0.004) for bs in (256, 512)}
    assert len(final.trials) == 6
    assert all(t.state == SUCCEEDED and t.test_accuracy > 0.9 for t in final.trials)
    best = final.trials[final.best_trial - 1]
    assert best.test_accuracy == max(t.test_accuracy for t in final.trials)


async def test_a_random_sweep_keeps_its_budget_and_parallelism(client: TunerClient) -> None:
    spec = parse("""
        strategy: random
        max_trials: 3
        parallelism: 2
        sampler_seed: 7
        space:
          epochs: [1]
          learning_rate: {min: 0.0005, max: 0.005, log: true}
          batch_size: [512]
          models: [mlp]
          seed: [3201]
    """)
    snapshots = await run(client, spec)
    launched = [len(s.trials) for s in snapshots if s.trials]
    assert launched[0] == 2, "the first trials are launched together, up to the parallelism"
    # A trial's place is free once its trainer reports the end, a moment before the end is
    # recorded: a snapshot may show that trial still running beside the next (the unit
    # tests of the driver hold the parallelism exactly).
    assert max(sum(t.state in ACTIVE for t in s.trials) for s in snapshots) <= 3
    assert len(snapshots[-1].trials) == 3
    assert all(t.state == SUCCEEDED for t in snapshots[-1].trials)
    rates = [t.hyperparameters.learning_rate for t in snapshots[-1].trials]
    assert all(0.0005 <= r <= 0.005 for r in rates) and len(set(rates)) == 3


async def test_a_configuration_that_already_ran_is_reused(
    client: TunerClient, running_stack: RunningStack
) -> None:
    done = await wait_for(
        client, (await client.submit(mlp(3301, batch_size=512))).job.id, SUCCEEDED
    )
    spec = parse("""
        strategy: grid
        max_trials: 2
        space:
          epochs: [1]
          learning_rate: [0.001, 0.002]
          batch_size: [512]
          models: [mlp]
          optimizers: [adam]
          seed: [3301]
    """)
    final = (await run(client, spec))[-1]
    first, second = final.trials
    assert first.job_id == done.id and first.reused
    assert first.test_accuracy == done.result.test_accuracy
    assert not second.reused
    log = running_stack.log("trainer-1")
    assert log.count(f"job {done.id} run 1 attempt 1: training") == 1


async def test_asha_prunes_a_trial_with_a_bad_learning_rate(client: TunerClient) -> None:
    spec = parse("""
        strategy: grid
        max_trials: 2
        parallelism: 1
        early_stopping: asha
        min_epochs: 1
        reduction_factor: 3
        space:
          epochs: [3]
          learning_rate: [0.05, 0.00001]
          batch_size: [256]
          models: [mlp]
          optimizers: [sgd]
          seed: [3401]
    """)
    final = (await run(client, spec))[-1]
    good, bad = final.trials
    assert good.state == SUCCEEDED and not good.pruned and good.epochs_done == 3
    assert bad.pruned and bad.state == job_pb2.JOB_STATE_CANCELLED
    assert bad.epochs_done < 3
    assert final.best_trial == good.number
    job = await client.get(bad.job_id)
    assert job.error == f"pruned by sweep {final.id}"


async def test_bad_specs_are_refused_with_the_field(client: TunerClient) -> None:
    cases = {
        "max_trials: 0\nspace: {epochs: [1], learning_rate: [0.1], batch_size: [8]}": "max_trials",
        "max_trials: 2\nspace: {epochs: [0], learning_rate: [0.1], batch_size: [8]}": "epochs",
        "max_trials: 2\nspace: {epochs: [1], learning_rate: {min: 0.1, max: 20}, batch_size: [8]}":
            "learning_rate",
        "max_trials: 2\nspace: {epochs: [1], learning_rate: [0.1]}": "batch_size",
    }  # fmt: skip
    for text, field in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.create_sweep(parse(text))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (raised.value.details() or ""), raised.value.details()


def test_the_cli_runs_a_sweep(running_stack: RunningStack, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: cli\nstrategy: grid\nmax_trials: 1\n"
        "space: {epochs: [1], learning_rate: [0.001], batch_size: [512], models: [mlp], "
        "seed: [3501]}\n"
    )
    env = dict(os.environ, TUNER_SERVER=running_stack.address, TUNER_USER="sweeper")
    done = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "sweep", "create", str(spec), "--wait", "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sweep = json.loads(done.stdout)
    assert sweep["state"] == "SWEEP_STATE_SUCCEEDED"
    assert sweep["trials"][0]["state"] == "JOB_STATE_SUCCEEDED"
    listed = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "sweep", "list"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sweep["id"] in listed.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy: sideways\nspace: {}\n")
    refused = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "sweep", "create", str(bad)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "strategy: 'sideways' is not one of grid, random, tpe" in refused.stderr


@pytest.mark.slow
async def test_a_scheduler_restart_resumes_the_sweep(own_stack: StartStack) -> None:
    running = own_stack(trainers=1)
    port = int(running.address.rsplit(":", 1)[1])
    spec = parse("""
        strategy: grid
        max_trials: 3
        parallelism: 1
        space:
          epochs: [2]
          learning_rate: [0.001, 0.002, 0.003]
          batch_size: [128]
          models: [mlp]
          seed: [3601]
    """)
    async with TunerClient(running.address, "sweeper") as client:
        sweep = await client.create_sweep(spec)
        async for snapshot in client.watch_sweep(sweep.id):
            if len(snapshot.trials) == 2:
                break  # the second trial was just launched
        scheduler = running.stack.process("scheduler")
        scheduler.send_signal(signal.SIGKILL)
        scheduler.wait()
        running.stack.start_scheduler(port)
        final = [s async for s in client.watch_sweep(sweep.id)][-1]
    assert final.state == sweep_pb2.SWEEP_STATE_SUCCEEDED
    assert [t.number for t in final.trials] == [1, 2, 3]
    assert len({t.job_id for t in final.trials}) == 3
    assert all(t.state == SUCCEEDED for t in final.trials)
