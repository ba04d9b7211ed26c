"""Faults injected into real processes: nothing lost, nothing recorded twice."""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
import pytest
from nats.errors import TimeoutError as NatsTimeout

from store.jobs import boards_of
from tests.support.hyperparameters import mlp
from tests.support.jobs import history, kinds, wait_for
from tests.support.stack import RunningStack, StartStack, mongo_client
from tuner.client import TunerClient
from tuner.core import streams
from tuner.v1 import event_pb2, job_pb2

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
RUNNING = job_pb2.JOB_STATE_RUNNING
FAILED = job_pb2.JOB_STATE_FAILED


def long_mlp(seed: int) -> job_pb2.Hyperparameters:
    """An MLP job of several seconds: small batches, several epochs."""
    return mlp(seed, epochs=4, batch_size=16)


def trainer_of(running: RunningStack, job: job_pb2.Job) -> str:
    return job.trainer


def results_recorded(running: RunningStack, job_id: str) -> int:
    """The job's result, plus its entries on its dataset's leaderboard: 2 when recorded once."""
    with mongo_client(running.mongo_uri) as mongo:
        doc = mongo.tuner.jobs.find_one({"_id": job_id})
        assert doc is not None
        board = boards_of(doc)[0]
        on_board = mongo.tuner.leaderboard.count_documents({"board": board, "job._id": job_id})
    return on_board + (doc["result"] is not None)


async def test_a_job_nobody_answers_for_fails_after_its_deliveries(
    own_stack: StartStack,
) -> None:
    running = own_stack(trainers=0, TUNER_ACK_WAIT_SECONDS="1", TUNER_MAX_DELIVER="2")
    nc = await streams.connect(running.nats_url, "silent-trainer")
    try:
        # A trainer that takes the job and dies before it says anything, twice.
        sub = await nc.jetstream().pull_subscribe_bind(
            durable=streams.TRAINERS_CONSUMER, stream=streams.JOBS_STREAM
        )
        async with TunerClient(running.address, "alice") as client:
            job = (await client.submit(mlp(seed=2001))).job
            for attempt in (1, 2):
                [msg] = await sub.fetch(1, timeout=10)
                assert msg.metadata.num_delivered == attempt
            # JetStream gives up on the message when a trainer next asks for work.
            with pytest.raises(NatsTimeout):
                await sub.fetch(1, timeout=3)
            failed = await wait_for(client, job.id, FAILED, timeout=30)
            assert kinds(await history(client, job.id))[-1] == "JOB_STATE_FAILED"
        assert failed.error == "gave up after 2 deliveries: each trainer stopped answering"
        info = await nc.jetstream().stream_info(streams.JOBS_STREAM)
        assert info.state.messages == 0, "the given-up message left the queue"
    finally:
        await nc.close()


@pytest.mark.slow  # a stack of its own for a fault: make test-slow
async def test_malformed_and_foreign_messages_are_dropped(own_stack: StartStack) -> None:
    running = own_stack(trainers=1)
    nc = await streams.connect(running.nats_url, "vandal")
    js = nc.jetstream()
    try:
        await js.publish(streams.JOBS_SUBJECT, b"\xff\x00 not protobuf")
        await js.publish(streams.events_subject("0" * 32, 1), b"\xff\xff\xff")
        ghost = event_pb2.JobEvent(job_id="f" * 32, run=1, attempt=1)
        ghost.succeeded.test_accuracy = 1.0
        await js.publish(streams.events_subject("f" * 32, 1), ghost.SerializeToString())
        await js.publish(streams.events_subject("e" * 32, 1), ghost.SerializeToString())
        await nc.publish(streams.cancel_subject("x"), b"\x08\x08garbage")
        async with TunerClient(running.address, "alice") as client:
            job = (await client.submit(mlp(seed=2002))).job
            done = await wait_for(client, job.id, SUCCEEDED, timeout=120)
            assert done.result.test_accuracy > 0.9
            assert await client.leaderboard(50) == [done]
    finally:
        await nc.close()
    with mongo_client(running.mongo_uri) as mongo:
        assert [d["_id"] for d in mongo.tuner.jobs.find({})] == [job.id]
    assert "dropped a malformed job message" in running.log("trainer-1")
    assert "dropped a malformed event" in running.log("scheduler")
    assert "foreign subject" in running.log("scheduler")
    for name, process in running.stack.processes:
        assert process.poll() is None, f"{name} died"


@pytest.mark.slow
async def test_a_diverging_job_fails_and_the_trainer_takes_the_next(
    own_stack: StartStack,
) -> None:
    running = own_stack(trainers=1)
    async with TunerClient(running.address, "alice") as client:
        bad = (await client.submit(mlp(2003, learning_rate=10.0, optimizer=1, batch_size=256))).job
        good = (await client.submit(mlp(seed=2004, batch_size=256))).job
        failed = await wait_for(client, bad.id, FAILED, timeout=120)
        assert failed.error.startswith("training loss became nan in epoch 1"), failed.error
        assert (await wait_for(client, good.id, SUCCEEDED, timeout=120)).result.test_accuracy > 0.9
    assert running.stack.process("trainer-1").poll() is None


@pytest.mark.slow
async def test_a_killed_trainer_s_job_is_redelivered_and_finishes_once(
    own_stack: StartStack,
) -> None:
    running = own_stack(trainers=2, TUNER_ACK_WAIT_SECONDS="3")
    async with TunerClient(running.address, "alice") as client:
        job = (await client.submit(long_mlp(seed=2005))).job
        first = await wait_for(client, job.id, RUNNING)
        running.stack.process(first.trainer).kill()
        done = await wait_for(client, job.id, SUCCEEDED, timeout=300)
        assert done.attempts == 2
        assert done.trainer != first.trainer
        seen = kinds(await history(client, job.id))
    assert seen.count("started") == 2
    assert seen.count("JOB_STATE_SUCCEEDED") == 1
    assert seen[-1] == "JOB_STATE_SUCCEEDED"
    assert results_recorded(running, job.id) == 2  # one result on the job, one board entry


@pytest.mark.slow
async def test_a_paused_trainer_cannot_overwrite_the_redelivered_run(
    own_stack: StartStack,
) -> None:
    running = own_stack(trainers=2, TUNER_ACK_WAIT_SECONDS="2")
    async with TunerClient(running.address, "alice") as client:
        job = (await client.submit(long_mlp(seed=2006))).job
        first = await wait_for(client, job.id, RUNNING)
        paused = running.stack.process(first.trainer)
        paused.send_signal(signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 60
            while (await client.get(job.id)).attempts < 2:
                assert time.monotonic() < deadline, "not redelivered"
                await asyncio.sleep(0.2)
        finally:
            paused.send_signal(signal.SIGCONT)
        done = await wait_for(client, job.id, SUCCEEDED, timeout=300)
        await asyncio.sleep(3)  # let the resumed trainer report whatever it still has
        events = await history(client, job.id)
        assert (await client.get(job.id)) == done
    assert done.attempts == 2 and done.trainer != first.trainer
    finals = [e for e in events if e.HasField("state_changed")]
    assert [e.state_changed.job.state for e in finals].count(SUCCEEDED) == 1
    assert finals[-1].state_changed.job.attempts == 2


@pytest.mark.slow
async def test_sigterm_hands_a_running_job_back_at_once(own_stack: StartStack) -> None:
    running = own_stack(trainers=2, TUNER_ACK_WAIT_SECONDS="60")
    async with TunerClient(running.address, "alice") as client:
        job = (await client.submit(long_mlp(seed=2007))).job
        first = await wait_for(client, job.id, RUNNING)
        stopped_at = time.monotonic()
        process = running.stack.process(first.trainer)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        second = await wait_for(client, job.id, RUNNING, timeout=60)
        while second.attempts < 2:
            second = await client.get(job.id)
            await asyncio.sleep(0.1)
        assert time.monotonic() - stopped_at < 30, "redelivered well before the 60 s ack wait"
        done = await wait_for(client, job.id, SUCCEEDED, timeout=300)
    assert done.trainer != first.trainer
    assert "handed back" in running.log(first.trainer)


@pytest.mark.slow
async def test_a_scheduler_restart_mid_job_loses_nothing(own_stack: StartStack) -> None:
    running = own_stack(trainers=1)
    port = int(running.address.rsplit(":", 1)[1])
    async with TunerClient(running.address, "alice") as client:
        job = (await client.submit(long_mlp(seed=2008))).job
        seen = []
        async for response in client.watch(job.id):
            if response.WhichOneof("kind") == "event":
                seen.append(response.event)
                if response.event.HasField("progress"):
                    break
        scheduler = running.stack.process("scheduler")
        scheduler.send_signal(signal.SIGKILL)
        scheduler.wait()
        await asyncio.sleep(2)  # the trainer keeps training and publishing meanwhile
        running.stack.start_scheduler(port)
        rest = await history(client, job.id, after=seen[-1].sequence)
        done = await wait_for(client, job.id, SUCCEEDED, timeout=300)
        everything = await history(client, job.id)
    assert seen + rest == everything
    assert done.attempts == 1 and len(done.history) == 4
    assert results_recorded(running, job.id) == 2


@pytest.mark.slow
async def test_a_nats_restart_loses_no_queued_job(own_stack: StartStack) -> None:
    running = own_stack(trainers=1)
    port = int(running.nats_url.rsplit(":", 1)[1])
    async with TunerClient(running.address, "alice") as client:
        jobs = [(await client.submit(mlp(seed=2010 + i, batch_size=256))).job for i in range(4)]
        nats = running.stack.process("nats")
        nats.send_signal(signal.SIGTERM)
        nats.wait(10)
        await asyncio.sleep(2)
        running.stack.start_nats(port)
        for job in jobs:
            done = await wait_for(client, job.id, SUCCEEDED, timeout=300)
            assert done.result.test_accuracy > 0.9
        # and both services still work after it
        late = (await client.submit(mlp(seed=2019, batch_size=256))).job
        await wait_for(client, late.id, SUCCEEDED, timeout=120)


@pytest.mark.slow
async def test_a_database_outage_answers_unavailable_and_loses_no_event(
    own_stack: StartStack,
) -> None:
    running = own_stack(trainers=1, db_in_memory=False)
    port = int(running.mongo_uri.rsplit(":", 1)[1].split("/")[0])
    async with TunerClient(running.address, "alice") as client:
        job = (await client.submit(long_mlp(seed=2030))).job
        await wait_for(client, job.id, RUNNING)
        database = running.stack.process("secantusdb")
        database.send_signal(signal.SIGTERM)
        database.wait(30)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.get(job.id)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert raised.value.details() == "database unavailable, try again"
        await asyncio.sleep(5)  # the trainer goes on reporting meanwhile
        running.stack.start_mongo(port)
        done = await wait_for(client, job.id, SUCCEEDED, timeout=300)
    assert [m.epoch for m in done.history] == [1, 2, 3, 4], "no epoch event lost"
    assert done.attempts == 1
    assert results_recorded(running, job.id) == 2
    for name, process in running.stack.processes:
        if name != "secantusdb":
            assert process.poll() is None, f"{name} died"


@pytest.mark.slow
@pytest.mark.parametrize("stalled", ["nats", "secantusdb"])
async def test_sigterm_with_a_part_stalled_stops_cleanly_within_the_grace(
    own_stack: StartStack, stalled: str
) -> None:
    """The scheduler and a trainer with a job, stopped while NATS or SecantusDB answers nothing:
    each exits 0 within its grace period (5 s, the trainer's 10 s, and their connections'
    closing), no traceback."""
    running = own_stack(trainers=1, TUNER_GRACE_SECONDS="5")
    async with TunerClient(running.address, "alice") as client:
        job = (await client.submit(long_mlp(seed=2041 if stalled == "nats" else 2042))).job
        await wait_for(client, job.id, RUNNING)
    part = running.stack.process(stalled)
    part.send_signal(signal.SIGSTOP)
    try:
        stopping = [running.stack.process(name) for name in ("scheduler", "trainer-1")]
        started = time.monotonic()
        for process in stopping:
            process.send_signal(signal.SIGTERM)
        codes, took = [], []
        for process in stopping:
            codes.append(process.wait(30))
            took.append(time.monotonic() - started)
    finally:
        part.send_signal(signal.SIGCONT)
    print(
        f"with {stalled} stalled: scheduler stopped in {took[0]:.1f} s, trainer in {took[1]:.1f} s"
    )
    assert codes == [0, 0]
    for name in ("scheduler", "trainer-1"):
        assert "Traceback" not in running.log(name), f"{name}:\n{running.log(name)[-3000:]}"
