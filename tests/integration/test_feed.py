"""The dashboards' feed: job events and, when asked for, the trainers' set and changes."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import pytest

from tests.support.hyperparameters import mlp
from tests.support.stack import StartStack
from tuner.client import TunerClient
from tuner.v1 import tuner_service_pb2

STARTUP_S = 120  # a trainer imports torch and loads MNIST first: seconds on a busy machine
Feed = AsyncIterator[tuner_service_pb2.WatchEventsResponse]


async def next_of(feed: Feed, kind: str, timeout: float) -> tuner_service_pb2.WatchEventsResponse:
    """The feed's next response of `kind`, skipping the others."""
    async with asyncio.timeout(timeout):
        while True:
            response = await anext(feed)
            if response.WhichOneof("kind") == kind:
                return response


async def trainer_change(feed: Feed, name: str, goodbye: bool, timeout: float) -> None:
    while True:
        change = await next_of(feed, "trainer_change", timeout)
        trainer = change.trainer_change.trainer
        if trainer.name == name and trainer.goodbye == goodbye:
            return


@pytest.mark.slow
async def test_the_feed_carries_trainers_beside_job_events(own_stack: StartStack) -> None:
    running = own_stack(trainers=1)
    async with TunerClient(running.address, "ops") as client:
        feed = client.watch_feed()
        first = await next_of(feed, "trainer_set", 30)
        if "trainer-1" not in {t.name for t in first.trainer_set.trainers}:
            await trainer_change(feed, "trainer-1", False, STARTUP_S)  # still starting

        await client.submit(mlp(seed=4242, epochs=1))
        assert (await next_of(feed, "event", 60)).event.job_id

        running.stack.start_trainer(2, 1)
        await trainer_change(feed, "trainer-2", False, STARTUP_S)
        running.stack.process("trainer-2").send_signal(signal.SIGTERM)
        await trainer_change(feed, "trainer-2", True, 60)


async def test_a_plain_feed_carries_job_events_only(own_stack: StartStack) -> None:
    running = own_stack(trainers=0)
    async with TunerClient(running.address, "ops") as client:
        feed = client.watch_feed(trainers=False)
        await client.submit(mlp(seed=4343, epochs=1))
        response = await asyncio.wait_for(anext(feed), 30)
        assert response.WhichOneof("kind") == "event"
