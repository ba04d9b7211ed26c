"""GetLeaderboard and `tuner leaderboard` over real gRPC: one leaderboard a dataset (and a
dataset and model), never one of every dataset mixed."""

from __future__ import annotations

import grpc
import pytest

from store.jobs import JobStore
from tests.support.hyperparameters import cnn, mlp
from tests.support.models import serving, stored_job, tuner_cli
from tests.support.servers import Nats
from tuner.client import TunerClient
from tuner.v1 import job_pb2

FASHION = job_pb2.DATASET_FASHION_MNIST


async def two_datasets(store: JobStore) -> dict[str, str]:
    """SUCCEEDED jobs of both datasets, stored and ranked as the recorder leaves them."""
    jobs = {
        "mnist-cnn": await stored_job(store, cnn(8001), accuracy=0.99),
        "mnist-mlp": await stored_job(store, mlp(8002), accuracy=0.97),
        "fashion-cnn": await stored_job(store, cnn(8003, dataset=FASHION), accuracy=0.91),
        "fashion-mlp": await stored_job(store, mlp(8004, dataset=FASHION), accuracy=0.88),
    }
    return {what: str(doc["_id"]) for what, doc in jobs.items()}


async def test_each_dataset_ranks_apart(store: JobStore, nats: Nats) -> None:
    ids = await two_datasets(store)
    async with serving(store, nats) as address, TunerClient(address, "bob") as client:

        async def board(**request: job_pb2.Dataset | job_pb2.Model) -> list[str]:
            return [job.id for job in await client.leaderboard(10, **request)]  # type: ignore[arg-type]

        # Unspecified is MNIST, as for a job: no leaderboard mixes the datasets.
        assert await board() == [ids["mnist-cnn"], ids["mnist-mlp"]]
        assert await board(dataset=job_pb2.DATASET_MNIST) == [ids["mnist-cnn"], ids["mnist-mlp"]]
        assert await board(dataset=FASHION) == [ids["fashion-cnn"], ids["fashion-mlp"]]
        assert await board(dataset=FASHION, model=job_pb2.MODEL_MLP) == [ids["fashion-mlp"]]
        assert await board(model=job_pb2.MODEL_MLP) == [ids["mnist-mlp"]]


@pytest.mark.parametrize(
    ("request_fields", "details"),
    [
        ({"dataset": 9}, "dataset: unknown dataset 9"),
        ({"model": 7}, "model: unknown model 7"),
    ],
)
async def test_an_unknown_dataset_or_model_is_refused(
    store: JobStore, nats: Nats, request_fields: dict[str, int], details: str
) -> None:
    async with serving(store, nats) as address, TunerClient(address, "bob") as client:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.leaderboard(10, **request_fields)  # type: ignore[arg-type]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == details


async def test_the_cli_shows_the_leaderboard_it_was_asked_for(store: JobStore, nats: Nats) -> None:
    ids = await two_datasets(store)
    async with serving(store, nats) as address:

        async def leaderboard(*args: str) -> list[str]:
            ran = await tuner_cli("leaderboard", "--server", address, "--user", "bob", *args)
            assert ran.returncode == 0, ran.stderr
            return ran.stdout.splitlines()

        out = await leaderboard("--dataset", "fashion-mnist")
        assert out[0] == "Leaderboard of fashion-mnist"
        assert [line.split()[0] for line in out[1:]] == ["1.", "2."]
        assert ids["fashion-cnn"] in out[1] and ids["fashion-mlp"] in out[2]
        out = await leaderboard("--dataset", "fashion-mnist", "--model", "mlp")
        assert out[0] == "Leaderboard of fashion-mnist, mlp only"
        assert len(out) == 2 and ids["fashion-mlp"] in out[1]
        out = await leaderboard()
        assert out[0] == "Leaderboard of mnist"
        assert ids["mnist-cnn"] in out[1] and ids["mnist-mlp"] in out[2]
        ran = await tuner_cli("leaderboard", "--server", address, "--dataset", "cifar")
        assert ran.returncode == 2
        assert "argument --dataset: invalid choice: 'cifar'" in ran.stderr
        assert "'mnist', 'fashion-mnist'" in ran.stderr
        ran = await tuner_cli("leaderboard", "--server", address, "--model", "resnet")
        assert ran.returncode == 2
        assert "argument --model: invalid choice: 'resnet'" in ran.stderr
