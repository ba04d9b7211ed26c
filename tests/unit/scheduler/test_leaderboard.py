"""GetLeaderboard and `tuner leaderboard` over real gRPC: one leaderboard a dataset (and a
dataset and model), never one of every dataset mixed; and the scheduler's copies of the
boards (scheduler/leaderboards.py), read again once any scheduler changed a board."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from pymongo.monitoring import CommandStartedEvent

from scheduler.leaderboards import FRESH_SECONDS, Leaderboards
from store.jobs import JobStore
from tests.support.hyperparameters import cnn, mlp
from tests.support.models import serving, stored_job, tuner_cli
from tests.support.servers import Nats
from tests.support.stores import StartedCommands, listened_store
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


class BoardReads(StartedCommands):
    """How many times a client read a leaderboard's entries."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command["find"] == "leaderboard":
            self.count += 1


async def test_a_board_is_read_again_only_once_a_scheduler_changed_it(mongo_uri: str) -> None:
    reads = BoardReads()
    async with listened_store(mongo_uri, reads) as store:
        other = JobStore.connect(mongo_uri, store.jobs.database.name)  # another replica's
        try:
            first = await stored_job(store, mlp(8101), accuracy=0.95)
            boards = Leaderboards(store)
            before = reads.count
            for _ in range(3):
                assert [j.id for j in await boards.top(10, "mnist")] == [first["_id"]]
            assert reads.count == before + 1
            better = await stored_job(other, mlp(8103), accuracy=0.99)
            ranked = [j.id for j in await boards.top(10, "mnist")]
            assert ranked[:2] == [better["_id"], first["_id"]]
            assert reads.count == before + 2
            assert [j.id for j in await boards.top(1, "mnist")] == [better["_id"]]
            assert [j.id for j in await boards.top(10, "mnist", "cnn")] == []
            assert reads.count == before + 3
        finally:
            await other.close()


async def test_a_change_whose_token_was_never_set_shows_within_fresh_seconds(
    store: JobStore,
) -> None:
    first = await stored_job(store, mlp(8201), accuracy=0.95)
    clock = [1000.0]
    boards = Leaderboards(store, clock=lambda: clock[0])
    assert [j.id for j in await boards.top(10, "mnist")] == [first["_id"]]
    # As a scheduler that died after writing an entry, before setting the board's token.
    hidden = await stored_job(store, mlp(8202), accuracy=0.99, ranked=False)
    entry: dict[str, Any] = {"_id": f"mnist {hidden['_id']}", "board": "mnist", "job": hidden}
    await store.leaderboard.insert_one(entry)
    clock[0] += FRESH_SECONDS
    assert [j.id for j in await boards.top(10, "mnist")] == [first["_id"]]
    clock[0] += 0.001
    assert [j.id for j in await boards.top(10, "mnist")] == [hidden["_id"], first["_id"]]
