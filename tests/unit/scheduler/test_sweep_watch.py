"""WatchSweep is pushed: each recorded change reaches watchers at once, announced once, and a
watcher never reads the store again. Against real NATS and SecantusDB, in process."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext

from scheduler.auth import current_user
from scheduler.dispatch import Dispatcher
from scheduler.fanout import read_alone
from scheduler.jobs import Jobs
from scheduler.sweeps.announce import Announcer
from scheduler.sweeps.driver import SweepDriver
from scheduler.sweeps.service import SweepService
from store.documents import Document
from store.jobs import JobStore
from store.sweeps import SweepStore
from tests.support.calls import Context
from tuner.core import states, streams
from tuner.core.streams import QueuePolicy
from tuner.sweep_spec import parse
from tuner.v1 import sweep_pb2

DRIVER = "test-driver"
SPEC = """
    strategy: grid
    max_trials: 3
    parallelism: 3
    space: {epochs: [1], learning_rate: [0.001, 0.002, 0.003], batch_size: [64], models: [mlp]}
"""


class CountingStore(SweepStore):
    """The service's store: counts its reads of a sweep."""

    reads = 0

    async def get(self, sweep_id: str) -> Document | None:
        self.reads += 1
        return await super().get(sweep_id)


class FlakyJetStream:
    """Publishes through `js` unless `down`, when it times out as with NATS unreachable."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self.down = False

    async def publish(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise NatsTimeout
        return await self.js.publish(*args, **kwargs)


@dataclass
class Parts:
    js: JetStreamContext
    store: JobStore
    jobs: Jobs
    sweeps: SweepStore
    watched: CountingStore
    driver: SweepDriver
    service: SweepService


@pytest.fixture
async def parts(nats_url: str, mongo_uri: str) -> AsyncIterator[Parts]:
    nc = await streams.connect(nats_url, "sweep-watch-test")
    js = nc.jetstream()
    await streams.ensure_streams(js, QueuePolicy())
    database = f"sweeps_{uuid.uuid4().hex[:12]}"
    store = JobStore.connect(mongo_uri, database)
    await store.ensure_indexes()
    sweeps = SweepStore(store.client, database)
    jobs = Jobs(store, Dispatcher(nc, js, store), max_active_per_user=100)
    announcer = Announcer(js, sweeps)
    driver = SweepDriver(sweeps, store, jobs, announcer, name=DRIVER)
    watched = CountingStore(store.client, database)
    service = SweepService(watched, driver, announcer, js)
    current_user.set("ann")
    try:
        yield Parts(js, store, jobs, sweeps, watched, driver, service)
    finally:
        await store.close()
        await nc.close()


@dataclass
class Watcher:
    """A WatchSweep call in a task of its own: what it received, each with when it came."""

    received: asyncio.Queue[tuple[float, sweep_pb2.Sweep]]
    task: asyncio.Task[None]

    async def next(self, since: float) -> sweep_pb2.Sweep:
        """The next sweep, which must come within half a second of `since`."""
        at, sweep = await asyncio.wait_for(self.received.get(), timeout=5)
        assert at - since < 0.5, f"the update came {at - since:.2f} s after the change"
        return sweep

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def watch(service: SweepService, sweep_id: str) -> Watcher:
    received: asyncio.Queue[tuple[float, sweep_pb2.Sweep]] = asyncio.Queue()

    async def read() -> None:
        request = sweep_pb2.WatchSweepRequest(sweep_id=sweep_id)
        async for response in service.WatchSweep(request, Context()):  # type: ignore[arg-type]
            if isinstance(response, bytes):  # serialized once for all watchers: as sent
                response = sweep_pb2.WatchSweepResponse.FromString(response)
            received.put_nowait((time.monotonic(), response.sweep))

    return Watcher(received, asyncio.create_task(read()))


async def create(parts: Parts) -> str:
    request = sweep_pb2.CreateSweepRequest(spec=parse(SPEC))
    response = await parts.service.CreateSweep(request, Context())  # type: ignore[arg-type]
    return response.sweep.id


async def step(parts: Parts, sweep_id: str) -> float:
    """One round of the driver on the sweep; when it ended."""
    assert await parts.sweeps.claim(sweep_id, DRIVER, 15)
    await parts.driver.step(sweep_id)
    return time.monotonic()


async def cancel_trial(parts: Parts, trial: sweep_pb2.Trial) -> None:
    job = await parts.store.get(trial.job_id)
    assert job is not None
    await parts.jobs.cancel(job, "cancelled by the test")


async def announced(js: JetStreamContext, sweep_id: str) -> list[int]:
    """The versions announced on the sweep's subject so far."""
    subject = streams.sweep_subject(sweep_id)
    changes = read_alone(js, subject, 0, sweep_pb2.SweepChanged.FromString, idle=0.5)
    return [change.version async for change in changes]


async def test_a_watcher_is_pushed_each_change_and_never_reads_the_store_again(
    parts: Parts,
) -> None:
    sweep_id = await create(parts)
    watcher = watch(parts.service, sweep_id)
    first = await watcher.next(time.monotonic())
    assert first.state == states.SWEEP_RUNNING and not first.trials

    launched = await watcher.next(await step(parts, sweep_id))
    assert [t.state for t in launched.trials] == [states.QUEUED] * 3

    # Rounds that change nothing announce nothing; the watcher hears nothing and reads nothing.
    await step(parts, sweep_id)
    await step(parts, sweep_id)
    await Announcer(parts.js, parts.sweeps).changed(sweep_id)  # a repeat of the same version
    await asyncio.sleep(1.5)
    assert watcher.received.empty()

    await cancel_trial(parts, launched.trials[0])
    one = await watcher.next(await step(parts, sweep_id))
    assert [t.state for t in one.trials] == [states.CANCELLED, states.QUEUED, states.QUEUED]
    assert one.state == states.SWEEP_RUNNING

    for trial in launched.trials[1:]:
        await cancel_trial(parts, trial)
    final = await watcher.next(await step(parts, sweep_id))
    assert final.state == states.SWEEP_SUCCEEDED
    await asyncio.wait_for(watcher.task, timeout=5)  # the watch ends with the sweep

    versions = await announced(parts.js, sweep_id)
    assert len(versions) == 4, versions  # created, launched, one trial ended, the end
    assert versions == sorted(set(versions))
    assert parts.watched.reads == 1, "WatchSweep read the store after its first message"


async def test_a_change_not_announced_while_nats_is_down_is_on_the_next_round(
    parts: Parts,
) -> None:
    flaky = FlakyJetStream(parts.js)
    announcer = Announcer(flaky, parts.sweeps)  # type: ignore[arg-type]
    parts.driver = SweepDriver(parts.sweeps, parts.store, parts.jobs, announcer, name=DRIVER)
    sweep_id = await create(parts)
    watcher = watch(parts.service, sweep_id)
    await watcher.next(time.monotonic())

    flaky.down = True
    await step(parts, sweep_id)  # launches the trials: stored, not announced
    await asyncio.sleep(1.0)
    assert watcher.received.empty()

    flaky.down = False
    await parts.driver.round()
    launched = await watcher.next(time.monotonic())
    assert len(launched.trials) == 3
    await watcher.stop()
