"""Reuse: a job whose configuration differs from a SUCCEEDED one's only in more epochs is
expected to continue from it; the submission says how many epochs it will not train."""

from __future__ import annotations

import asyncio

from scheduler.dispatch import Dispatcher
from scheduler.jobs import Jobs
from store.jobs import JobStore
from tests.support.hyperparameters import mlp
from tests.support.models import config_id, serving, stored_job, tuner_cli
from tests.support.servers import Nats
from tuner.client import TunerClient
from tuner.core import states
from tuner.core.hyperparameters import lineage, normalized


def jobs(store: JobStore, nats: Nats) -> Jobs:
    return Jobs(store, Dispatcher(nats.nc, nats.js, store), 100)


async def test_more_epochs_of_a_succeeded_configuration_reuse_its_epochs(
    store: JobStore, nats: Nats
) -> None:
    await stored_job(store, mlp(8001, epochs=2))

    longer, existed = await jobs(store, nats).submit(normalized(mlp(8001, epochs=4)), "bob")
    shorter, _ = await jobs(store, nats).submit(normalized(mlp(8001, epochs=1)), "bob")
    other_lr, _ = await jobs(store, nats).submit(
        normalized(mlp(8001, epochs=4, learning_rate=0.002)), "bob"
    )

    assert not existed, "a job of its own: the dedup rule is unchanged"
    assert longer["_id"] == config_id(mlp(8001, epochs=4)) != config_id(mlp(8001, epochs=2))
    assert (longer["state"], longer["reused_epochs"]) == ("QUEUED", 2)
    assert longer["lineage"] == lineage(normalized(mlp(8001, epochs=2)))
    assert shorter["reused_epochs"] == 0, "nothing shorter succeeded"
    assert other_lr["reused_epochs"] == 0, "another learning rate is another lineage"


async def test_the_longest_shorter_job_whose_model_is_kept_is_chosen(
    store: JobStore, nats: Nats
) -> None:
    for epochs in (1, 3, 6):
        await stored_job(store, mlp(8002, epochs=epochs))
    await stored_job(store, mlp(8002, epochs=4), states.FAILED)
    expired = await stored_job(store, mlp(8002, epochs=8))
    await store.set_model_deleted(expired["_id"], expired["end_time"])

    def submitted(epochs: int) -> asyncio.Task[int]:
        async def reused() -> int:
            doc, _ = await jobs(store, nats).submit(normalized(mlp(8002, epochs=epochs)), "bob")
            return int(doc["reused_epochs"])

        return asyncio.create_task(reused())

    assert await submitted(5) == 3, "the FAILED 4-epoch job is no source"
    assert await submitted(9) == 6, "the expired 8-epoch job's checkpoint went with its model"
    assert await submitted(2) == 1


async def test_a_rerun_reuses_too(store: JobStore, nats: Nats) -> None:
    failed = await stored_job(store, mlp(8003, epochs=3), states.FAILED)
    assert failed["reused_epochs"] == 0
    await stored_job(store, mlp(8003, epochs=2))

    doc, existed = await jobs(store, nats).submit(normalized(mlp(8003, epochs=3)), "bob")

    assert not existed
    assert (doc["run"], doc["reused_epochs"]) == (2, 2)


async def test_submit_job_says_what_it_reuses(store: JobStore, nats: Nats) -> None:
    await stored_job(store, mlp(8004, epochs=2))
    async with serving(store, nats) as address, TunerClient(address, "bob") as client:
        first = await client.submit(mlp(8004, epochs=4))
        again = await client.submit(mlp(8004, epochs=4))
        done = await client.submit(mlp(8004, epochs=2))
        got = await client.get(first.job.id)

    assert (first.reused_epochs, first.job.reused_epochs, first.deduplicated) == (2, 2, False)
    assert (again.reused_epochs, again.deduplicated) == (2, True), "still to train: still so"
    assert (done.reused_epochs, done.deduplicated) == (0, True), "a SUCCEEDED job trains none"
    assert got.reused_epochs == 2


async def test_tuner_submit_prints_the_job_it_reuses(store: JobStore, nats: Nats) -> None:
    await stored_job(store, mlp(8005, epochs=2))
    async with serving(store, nats) as address:
        ran = await tuner_cli(
            *("submit", "--server", address, "--user", "bob", "--epochs", "3", "--lr", "0.001"),
            *("--batch-size", "64", "--model", "mlp", "--seed", "8005"),
        )

    assert ran.returncode == 0, ran.stderr
    assert f"reuses 2 epochs of job {config_id(mlp(8005, epochs=2))}" in ran.stderr.splitlines()
    assert ran.stdout.startswith(config_id(mlp(8005, epochs=3)))
