"""Analysis: PED-ANOVA's importances and when they are not defined, AnalyzeRequest's sets
over real gRPC, and `tuner analyze`, `tuner compare` and `tuner export` against them."""

from __future__ import annotations

import contextlib
import csv
import json
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import optuna
import pytest
from google.protobuf.duration_pb2 import Duration
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from scheduler.analysis import AnalysisService
from scheduler.dispatch import Dispatcher
from scheduler.importance import MIN_JOBS, ONE_VALUE, TrialSet, _ped_anova, importances, too_few
from scheduler.interceptors import server_interceptors
from scheduler.jobs import Jobs
from scheduler.service import TunerService
from scheduler.status import Status
from scheduler.trainers import Trainers
from store.documents import Document, epoch_doc, new_job
from store.jobs import JobStore
from store.sweeps import SweepStore, new_sweep, new_trial
from tests.support.hyperparameters import mlp
from tests.support.models import stored_job, tuner_cli
from tests.support.servers import Nats
from tuner.client import TunerClient
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.v1 import analysis_pb2, analysis_pb2_grpc, job_pb2, sweep_pb2, tuner_service_pb2_grpc

SGD = job_pb2.OPTIMIZER_SGD
ADAM = job_pb2.OPTIMIZER_ADAM
RATES = (0.001, 0.01, 0.1)


def hp_doc(**fields: object) -> Document:
    doc: Document = {
        "epochs": 1,
        "learning_rate": 0.01,
        "batch_size": 512,
        "dataset": "mnist",
        "model": "mlp",
        "optimizer": "adam",
        "seed": 0,
    }
    doc.update(fields)
    return doc


def grid_rows() -> list[tuple[Document, float]]:
    return [
        (hp_doc(learning_rate=lr, optimizer=opt), 0.9 - 0.1 * i + (0.05 if opt == "adam" else 0))
        for i, lr in enumerate(RATES)
        for opt in ("sgd", "adam")
    ]


def test_only_the_varied_hyperparameters_are_defined() -> None:
    found = importances(grid_rows())
    defined = {i.name: i.value for i in found if i.defined}
    assert set(defined) == {"learning_rate", "optimizer"}
    assert sum(defined.values()) == pytest.approx(1.0)
    assert [i.name for i in found[:2]] == sorted(defined, key=lambda n: -defined[n])
    for i in found[2:]:
        assert not i.defined and i.reason == ONE_VALUE and i.value == 0


def test_a_set_too_small_has_no_importance() -> None:
    found = importances(grid_rows()[: MIN_JOBS - 1])
    assert len(found) == 7
    assert all(not i.defined and i.reason == too_few(MIN_JOBS - 1) for i in found)


def test_nothing_varied_is_all_undefined() -> None:
    found = importances([(hp_doc(), 0.5 + i / 100) for i in range(5)])
    assert all(not i.defined and i.reason == ONE_VALUE for i in found)


def test_the_trial_set_reads_as_a_real_study() -> None:
    """TrialSet skips the study's copies; optuna's own study must give the same."""
    rows = grid_rows() * 3
    values: dict[str, set[Any]] = {"learning_rate": set(RATES), "optimizer": {"sgd", "adam"}}
    ours = _ped_anova(rows, values)
    captured: list[TrialSet] = []
    original = TrialSet.__init__

    def keep(self: TrialSet, trials: list[optuna.trial.FrozenTrial]) -> None:
        original(self, trials)
        captured.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrialSet, "__init__", keep)
        _ped_anova(rows, values)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(direction="maximize")
        study.add_trials(captured[0].get_trials())
        theirs = optuna.importance.PedAnovaImportanceEvaluator().evaluate(
            study, params=list(values)
        )
    assert ours == pytest.approx(theirs)
    assert ours["learning_rate"] > 0


async def stored(store: JobStore, hp: job_pb2.Hyperparameters, accuracy: float) -> Document:
    """A SUCCEEDED job with one epoch a run of its epochs, its accuracy rising to `accuracy`."""
    doc = await stored_job(store, hp, accuracy=accuracy, ranked=False)
    history = [
        epoch_doc(
            job_pb2.EpochMetrics(
                epoch=e,
                train_loss=1.0 / e,
                test_loss=1.5 / e,
                test_accuracy=accuracy - 0.01 * (hp.epochs - e),
                training_duration=Duration(seconds=1),
                evaluation_duration=Duration(seconds=1),
                attempt=1,
            )
        )
        for e in range(1, hp.epochs + 1)
    ]
    await store.jobs.update_one({"_id": doc["_id"]}, {"$set": {"history": history}})
    return doc


async def grid(store: JobStore) -> dict[tuple[float, int], str]:
    """6 MLP jobs over learning rate and optimizer (2 epochs); lr 0.01 with Adam is best."""
    ids: dict[tuple[float, int], str] = {}
    for i, lr in enumerate(RATES):
        for optimizer in (SGD, ADAM):
            accuracy = 0.9 - 0.05 * abs(i - 1) + (0.02 if optimizer == ADAM else 0)
            hp = mlp(7100, epochs=2, learning_rate=lr, batch_size=512, optimizer=optimizer)
            ids[(lr, optimizer)] = str((await stored(store, hp, accuracy))["_id"])
    return ids


@contextlib.asynccontextmanager
async def serving(store: JobStore, nats: Nats) -> AsyncIterator[str]:
    """TunerService and AnalysisService behind the scheduler's interceptors: the address."""
    trainers = Trainers()
    tuner = TunerService(
        store,
        Jobs(store, Dispatcher(nats.nc, nats.js, store), 100),
        nats.js,
        trainers,
        Status(nats.nc, nats.js, store, trainers),
    )
    server = grpc.aio.server(interceptors=server_interceptors({}))
    tuner_service_pb2_grpc.add_TunerServiceServicer_to_server(tuner, server)
    sweeps = SweepStore(store.client, store.jobs.database.name)
    analysis_pb2_grpc.add_AnalysisServiceServicer_to_server(AnalysisService(store, sweeps), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


def mlp_filter(**fields: object) -> analysis_pb2.AnalyzeRequest:
    return analysis_pb2.AnalyzeRequest(
        filter=analysis_pb2.JobFilter(model=job_pb2.MODEL_MLP, **fields)  # type: ignore[arg-type]
    )


async def test_a_filter_analyses_its_jobs(store: JobStore, nats: Nats) -> None:
    ids = await grid(store)
    await stored(store, mlp(7199, model=job_pb2.MODEL_CNN), 0.99)  # not an MLP: not in the set
    async with serving(store, nats) as address, TunerClient(address, "ann") as client:
        response = await client.analyze(mlp_filter())
        assert response.count == 6 and not response.truncated and not response.note
        assert response.best_job_id == ids[(0.01, ADAM)]
        assert response.best_test_accuracy == pytest.approx(0.92)
        assert {i.name for i in response.importances if i.defined} == {
            "learning_rate",
            "optimizer",
        }
        assert sorted(p.job_id for p in response.points) == sorted(ids.values())
        assert [p.trial_number for p in response.points] == [1, 2, 3, 4, 5, 6]

        narrow = await client.analyze(
            mlp_filter(learning_rate=analysis_pb2.Range(min=0.005, max=0.05), optimizer=SGD)
        )
        assert [p.job_id for p in narrow.points] == [ids[(0.01, SGD)]]
        assert all(i.reason == too_few(1) for i in narrow.importances)


async def test_bad_sets(store: JobStore, nats: Nats) -> None:
    await grid(store)
    async with serving(store, nats) as address, TunerClient(address, "ann") as client:
        empty = await client.analyze(mlp_filter(dataset=job_pb2.DATASET_FASHION_MNIST))
        assert empty.count == 0 and not empty.points and not empty.best_job_id
        assert empty.note == "no SUCCEEDED job matches the filter"
        for request, code in [
            (analysis_pb2.AnalyzeRequest(sweep_id=uuid.uuid4().hex), grpc.StatusCode.NOT_FOUND),
            (analysis_pb2.AnalyzeRequest(sweep_id="nope"), grpc.StatusCode.INVALID_ARGUMENT),
            (mlp_filter(epochs=analysis_pb2.Range(min=5, max=2)), grpc.StatusCode.INVALID_ARGUMENT),
            (mlp_filter(optimizer=9), grpc.StatusCode.INVALID_ARGUMENT),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await client.analyze(request)
            assert raised.value.code() == code, request


async def test_a_sweep_analyses_its_succeeded_trials(store: JobStore, nats: Nats) -> None:
    ids = await grid(store)
    failed = normalized(mlp(7150))
    key = canonical_key(failed)
    queued = new_job(job_id(key), key, failed, "ann")
    assert await store.insert(queued)
    sweeps = SweepStore(store.client, store.jobs.database.name)
    sweep = new_sweep(uuid.uuid4().hex, sweep_pb2.SweepSpec(name="s"), "ann")
    chosen = [ids[(0.1, SGD)], ids[(0.001, ADAM)], queued["_id"]]
    for number, jid in enumerate(chosen, 1):
        job = await store.get(jid)
        assert job is not None
        sweep["trials"].append(new_trial(number, job, reused=False))
    await sweeps.insert(sweep)
    async with serving(store, nats) as address, TunerClient(address, "ann") as client:
        response = await client.analyze(analysis_pb2.AnalyzeRequest(sweep_id=sweep["_id"]))
    assert [(p.trial_number, p.job_id) for p in response.points] == [
        (1, chosen[0]),
        (2, chosen[1]),
    ]
    assert response.best_job_id == chosen[1]


async def test_the_cli_analyzes_compares_and_exports(
    store: JobStore, nats: Nats, tmp_path: Path
) -> None:
    ids = await grid(store)
    async with serving(store, nats) as address:
        server = ("--server", address)
        ran = await tuner_cli("analyze", *server, "--model", "mlp", "--json")
        assert ran.returncode == 0, ran.stderr
        answer = json.loads(ran.stdout)
        assert answer["best_job_id"] == ids[(0.01, ADAM)]
        assert {i["name"] for i in answer["importances"] if i.get("defined")} == {
            "learning_rate",
            "optimizer",
        }
        ran = await tuner_cli("analyze", *server, "--model", "mlp")
        assert ran.returncode == 0 and "importance for test accuracy" in ran.stdout
        assert "seed" in ran.stdout and ONE_VALUE in ran.stdout
        ran = await tuner_cli("analyze", *server, "--dataset", "fashion-mnist")
        assert (ran.returncode, ran.stdout.strip()) == (0, "no SUCCEEDED job matches the filter")
        ran = await tuner_cli("analyze", *server, "--sweep", uuid.uuid4().hex)
        assert ran.returncode == 1 and "NOT_FOUND" in ran.stderr

        pair = [ids[(0.001, SGD)], ids[(0.01, ADAM)]]
        ran = await tuner_cli("compare", *server, *pair)
        assert ran.returncode == 0, ran.stderr
        lines = ran.stdout.splitlines()
        assert lines[0].split() == [i[:12] for i in pair]
        assert any(line.split()[:2] == ["optimizer", "sgd"] for line in lines)
        assert [line.split()[0] for line in lines if line[:1].isdigit()] == ["1", "2"]
        ran = await tuner_cli("compare", *server, *pair, "--json")
        assert [j["id"] for j in json.loads(ran.stdout)["jobs"]] == pair
        ran = await tuner_cli("compare", *server, pair[0])
        assert (
            ran.returncode == 1
            and ran.stderr.strip() == "tuner: compare takes 2 to 4 different job ids"
        )

        out = tmp_path / "study.log"
        ran = await tuner_cli(
            "export", *server, "--format", "optuna", "--model", "mlp", "-o", str(out)
        )
        assert ran.returncode == 0, ran.stderr
        study = optuna.load_study(
            study_name=None, storage=JournalStorage(JournalFileBackend(str(out)))
        )
        trials = {t.user_attrs["job_id"]: t for t in study.trials}
        assert set(trials) == set(ids.values())
        best = trials[ids[(0.01, ADAM)]]
        assert best.value == pytest.approx(0.92) and study.best_trial.number == best.number
        assert best.params["optimizer"] == "adam" and best.params["learning_rate"] == 0.01
        assert best.intermediate_values == pytest.approx({1: 0.91, 2: 0.92})
        assert isinstance(
            best.distributions["learning_rate"], optuna.distributions.FloatDistribution
        )

        out = tmp_path / "jobs.csv"
        ran = await tuner_cli("export", *server, "--format", "csv", "-o", str(out))
        assert ran.returncode == 0, ran.stderr
        rows = list(csv.DictReader(out.read_text().splitlines()))
        assert {r["job_id"] for r in rows} == set(ids.values())
        out = tmp_path / "jobs.jsonl"
        ran = await tuner_cli("export", *server, "--format", "jsonl", "-o", str(out))
        lines = out.read_text().splitlines()
        assert {json.loads(line)["job"]["id"] for line in lines} == set(ids.values())
        assert all(len(json.loads(line)["job"]["history"]) == 2 for line in lines)

        missing = tmp_path / "no" / "such" / "dir" / "x.csv"
        ran = await tuner_cli("export", *server, "--format", "csv", "-o", str(missing))
        assert ran.returncode == 1 and len(ran.stderr.strip().splitlines()) == 1
        assert ran.stderr.startswith(f"tuner: cannot write {missing}")
        assert not missing.parent.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.csv", "jobs.jsonl", "study.log"]
