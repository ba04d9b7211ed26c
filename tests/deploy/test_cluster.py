"""Across hosts, for real: six hosts made of network namespaces on this machine.

n1, n2, n3 run a NATS JetStream cluster (every stream replicated x3), `sched` runs SecantusDB and
the scheduler, t1 and t2 a trainer each. Jobs train; then, mid-run, the NATS node leading the job
queue loses its network and a busy trainer is killed, and still every job succeeds exactly once.
`make test-cluster` runs it as root; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import nats
import pymongo
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from tests.deploy.netns import Host, Network, unavailable
from tests.support.hyperparameters import mlp
from tuner.client import TunerClient
from tuner.core import streams
from tuner.stack import executable, wait_until_serving
from tuner.v1 import event_pb2, job_pb2

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
NATS_HOSTS = {"n1": 11, "n2": 12, "n3": 13}
TRAINER_HOSTS = {"trainer-1": ("t1", 31), "trainer-2": ("t2", 32)}
REPLICAS = 3
TOKEN = "cluster-test-token-0123456789"  # the scheduler listens beyond loopback: tokens on
ACK_WAIT_SECONDS = 10
SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
RUNNING = job_pb2.JOB_STATE_RUNNING
FINAL = (SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED)
T = TypeVar("T")


class Say:
    """Prints what happened and when: `make test-cluster` shows it (pytest -rA)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f} s] {message}", flush=True)


@dataclass
class Cluster:
    network: Network
    nats: dict[str, Host]  # by server name
    nats_relays: dict[str, str]  # a loopback address reaching each NATS server, by name
    monitors: dict[str, str]  # each NATS server's HTTP monitoring, by server name
    mongo: str
    scheduler: str
    trainers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    killed: set[str] = field(default_factory=set)

    def check_alive(self) -> None:
        for name, process in self.network.processes.items():
            if process.poll() is not None and name not in self.killed:
                log = self.network.log(name)
                raise AssertionError(f"{name} exited with {process.returncode}:\n{log}")


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    for tool in ("nats-server", "secantusd-py"):
        try:
            executable(tool)
        except FileNotFoundError as error:
            pytest.skip(str(error))
    net = Network(tmp_path / "logs")
    try:
        yield net
    finally:
        net.close()


async def retry(call: Callable[[], Awaitable[T]], what: str, timeout: float = 60) -> T:
    """JetStream calls from the test go through relays; ride out elections and reconnects."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except Exception as error:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what}: still failing after {timeout} s: {error!r}"
                ) from error
            await asyncio.sleep(0.5)


@asynccontextmanager
async def jetstream(relays: list[str]) -> AsyncIterator[tuple[Client, JetStreamContext]]:
    async def quiet(error: Exception) -> None:
        pass

    nc = await nats.connect(
        [f"nats://{r}" for r in relays],
        name="cluster-test",  # in /connz, beside the services
        ping_interval=2,
        max_outstanding_pings=2,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=quiet,
    )
    try:
        yield nc, nc.jetstream(timeout=3)
    finally:
        await nc.close()


def start_cluster(network: Network, state: Path) -> Cluster:
    nats_hosts = {name: network.add_host(name, octet) for name, octet in NATS_HOSTS.items()}
    sched = network.add_host("sched", 20)
    for name, host in nats_hosts.items():
        routes = [f"nats://{h.address}:6222" for h in nats_hosts.values() if h is not host]
        args = [executable("nats-server"), "-js", "--name", name, "-a", host.address, "-p", "4222"]
        args += [
            "-m",
            "8222",
            "-sd",
            str(state / name),
            "--cluster_name",
            "tuner",
            "--no_advertise",
        ]
        args += ["--cluster", f"nats://{host.address}:6222", "--routes", ",".join(routes)]
        network.start(f"nats-{name}", args, host)
    args = [executable("secantusd-py"), "--host", "127.0.0.1", "--port", "27017"]
    args += ["--storage-path", ":memory:", "--log-level", "WARNING"]
    network.start("secantusdb", args, sched)
    return Cluster(
        network=network,
        nats=nats_hosts,
        nats_relays={n: network.relay(h, f"{h.address}:4222") for n, h in nats_hosts.items()},
        monitors={n: network.relay(h, f"{h.address}:8222") for n, h in nats_hosts.items()},
        mongo=network.relay(sched, "127.0.0.1:27017"),
        scheduler=network.relay(sched, f"{sched.address}:50051"),
    )


def service_env(cluster: Cluster, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env.update(
        TUNER_NATS_URL=",".join(f"nats://{h.address}:4222" for h in cluster.nats.values()),
        TUNER_STREAM_REPLICAS=str(REPLICAS),
        TUNER_ACK_WAIT_SECONDS=str(ACK_WAIT_SECONDS),
        TUNER_MAX_DELIVER="5",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


async def start_services(cluster: Cluster, data_dir: Path) -> None:
    net = cluster.network
    sched = net.hosts["sched"]
    env = service_env(
        cluster,
        TUNER_LISTEN=f"{sched.address}:50051",
        TUNER_MONGO_URI="mongodb://127.0.0.1:27017/?directConnection=true",
        TUNER_TOKENS=f"cluster-test: {TOKEN}",
    )
    process = net.start("scheduler", [sys.executable, "-m", "scheduler"], sched, env, REPO)
    try:
        await asyncio.to_thread(wait_until_serving, cluster.scheduler, process, 90)
    except Exception as error:
        raise AssertionError(f"{error}\n{net.log('scheduler')}") from error
    for name, (host_name, octet) in TRAINER_HOSTS.items():
        host = net.add_host(host_name, octet)
        env = service_env(
            cluster,
            TUNER_DATA_DIR=str(data_dir),
            TUNER_DEVICE="cpu",
            TUNER_TRAINER_NAME=name,
            TUNER_TORCH_THREADS="1",
        )
        args = [sys.executable, "-m", "trainer"]
        cluster.trainers[name] = net.start(name, args, host, env, REPO)
    deadline = time.monotonic() + 120
    while not all(f"trainer {n} ready" in net.log(n, 200) for n in cluster.trainers):
        cluster.check_alive()
        assert time.monotonic() < deadline, "trainers not ready after 120 s"
        await asyncio.sleep(0.5)


async def wait_jobs(
    cluster: Cluster, client: TunerClient, ids: list[str], timeout: float
) -> list[job_pb2.Job]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = [await client.get(i) for i in ids]
        if all(j.state in FINAL for j in jobs):
            return jobs
        cluster.check_alive()
        if time.monotonic() > deadline:
            states = collections.Counter(job_pb2.JobState.Name(j.state) for j in jobs)
            raise AssertionError(f"jobs not done after {timeout} s: {dict(states)}")
        await asyncio.sleep(0.5)


async def busy_trainer(cluster: Cluster, client: TunerClient, ids: list[str]) -> tuple[str, str]:
    """Once both trainers train, the one that started last, and its job, still running 1 s on."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = [await client.get(i) for i in ids]
        running = {j.trainer: j for j in jobs if j.state == RUNNING}
        if set(running) == set(TRAINER_HOSTS):
            job = max(running.values(), key=lambda j: j.start_time.ToNanoseconds())
            await asyncio.sleep(1)
            again = await client.get(job.id)
            if again.state == RUNNING and again.trainer == job.trainer:
                return job.trainer, job.id
        cluster.check_alive()
        await asyncio.sleep(0.2)
    raise AssertionError("the two trainers never trained at once")


def monitor(cluster: Cluster, server: str, path: str) -> Any:
    """One NATS server's HTTP monitoring endpoint, as JSON."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    with direct.open(f"http://{cluster.monitors[server]}{path}", timeout=5) as reply:
        return json.load(reply)


def clients(cluster: Cluster, server: str) -> list[str]:
    """The names of the clients connected to one NATS server, from its monitoring endpoint."""
    connections = monitor(cluster, server, "/connz").get("connections") or []
    return sorted(c.get("name", "?") for c in connections)


def job_queue_leaders(cluster: Cluster, server: str) -> tuple[str | None, str | None]:
    """What one server itself believes leads the job queue's stream and its consumer (/jsz)."""
    jsz = monitor(cluster, server, "/jsz?accounts=true&streams=true&consumers=true")
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            if stream.get("name") != streams.JOBS_STREAM:
                continue
            consumer: dict[str, Any] = next(
                (
                    c
                    for c in stream.get("consumer_detail") or []
                    if c.get("name") == streams.TRAINERS_CONSUMER
                ),
                {},
            )
            return (
                (stream.get("cluster") or {}).get("leader"),
                (consumer.get("cluster") or {}).get("leader"),
            )
    return None, None


async def majority_leader(
    cluster: Cluster, js: JetStreamContext, survivors: list[str], timeout: float = 90
) -> tuple[str, str]:
    """The job queue's stream and consumer leaders once the surviving majority agrees on them.

    `js` must reach the survivors only: the unplugged node still answers whoever reaches it
    (its relay lives in its namespace) with its own stale view, naming itself leader until it
    notices it lost its quorum. So poll the survivors until the JetStream API names a survivor
    as leader of both the stream and the consumer, and every survivor's /jsz says the same.
    """
    deadline = time.monotonic() + timeout
    seen: object = None
    while True:
        try:
            stream = await js.stream_info(streams.JOBS_STREAM)
            consumer = await js.consumer_info(streams.JOBS_STREAM, streams.TRAINERS_CONSUMER)
            leaders = (
                stream.cluster.leader if stream.cluster else None,
                consumer.cluster.leader if consumer.cluster else None,
            )
            views = {s: await asyncio.to_thread(job_queue_leaders, cluster, s) for s in survivors}
            seen = {"api": leaders, **views}
            stream_leader, consumer_leader = leaders
            agreed = all(view == leaders for view in views.values())
            if stream_leader in survivors and consumer_leader in survivors and agreed:
                return str(stream_leader), str(consumer_leader)
        except Exception as error:  # no leader yet: timeouts, 503s, "no responders"
            seen = repr(error)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no survivor of {survivors} leads {streams.JOBS_STREAM} and its consumer, "
                f"as the survivors see it, {timeout} s after the cut; last seen: {seen}"
            )
        await asyncio.sleep(0.25)


async def lead_from(nc: Client, js: JetStreamContext, server: str) -> None:
    """Move the job queue's stream and consumer leaders to `server` (leader step-downs)."""
    api = "$JS.API.STREAM.LEADER.STEPDOWN." + streams.JOBS_STREAM
    consumer_api = (
        f"$JS.API.CONSUMER.LEADER.STEPDOWN.{streams.JOBS_STREAM}.{streams.TRAINERS_CONSUMER}"
    )
    prefer = json.dumps({"placement": {"preferred": server}}).encode()

    async def moved() -> None:
        stream = await js.stream_info(streams.JOBS_STREAM)
        consumer = await js.consumer_info(streams.JOBS_STREAM, streams.TRAINERS_CONSUMER)
        for subject, info in ((api, stream.cluster), (consumer_api, consumer.cluster)):
            if info is None or info.leader != server:
                await nc.request(subject, prefer, timeout=3)
                raise AssertionError(f"{subject}: leader {info and info.leader}, not {server}")

    await retry(moved, f"moving the job queue's leaders to {server}", timeout=60)


async def submit(client: TunerClient, seeds: range, epochs: int = 1) -> list[str]:
    return [(await client.submit(mlp(seed=s, epochs=epochs))).job.id for s in seeds]


async def read_events(js: JetStreamContext) -> dict[str, list[event_pb2.JobEvent]]:
    """Every event in the events stream, by job."""
    config = ConsumerConfig(ack_policy=AckPolicy.NONE)
    sub = await js.pull_subscribe(
        streams.EVENTS_SUBJECTS, stream=streams.EVENTS_STREAM, config=config
    )
    by_job: dict[str, list[event_pb2.JobEvent]] = collections.defaultdict(list)
    try:
        while True:
            try:
                msgs = await sub.fetch(500, timeout=2)
            except nats.errors.TimeoutError:
                return by_job
            for msg in msgs:
                event = event_pb2.JobEvent.FromString(msg.data)
                by_job[event.job_id].append(event)
    finally:
        await sub.unsubscribe()


async def test_jobs_survive_losing_a_nats_node_and_a_trainer_mid_run(
    network: Network,
    tmp_path: Path,
    data_dir: Path,
    record_property: Callable[[str, object], None],
) -> None:
    say = Say()
    cluster = start_cluster(network, tmp_path / "nats")
    async with (
        AsyncExitStack() as stack,
        jetstream(list(cluster.nats_relays.values())) as (nc, js),
    ):
        await retry(js.account_info, "JetStream cluster ready")
        say(f"NATS cluster of {len(cluster.nats)} up, JetStream meta leader elected")
        await start_services(cluster, data_dir)
        say(f"scheduler on {network.hosts['sched'].address}, trainers on t1 and t2: ready")

        tuner_streams = [
            s
            for s in await retry(js.streams_info, "streams")
            if str(s.config.name).startswith("TUNER_")
        ]
        assert {streams.JOBS_STREAM, streams.EVENTS_STREAM} <= {
            s.config.name for s in tuner_streams
        }
        for info in tuner_streams:
            assert info.config.num_replicas == REPLICAS, (
                f"{info.config.name} keeps {info.config.num_replicas} copies, not {REPLICAS}: "
                "the services must declare streams with TUNER_STREAM_REPLICAS"
            )
        say(f"streams {sorted(str(s.config.name) for s in tuner_streams)} replicated x{REPLICAS}")

        async with TunerClient(cluster.scheduler, "cluster-test", token=TOKEN) as client:
            # Across hosts, nothing broken: jobs train on both trainers.
            t0 = time.monotonic()
            first = await submit(client, range(1, 5))
            jobs = await wait_jobs(cluster, client, first, timeout=300)
            assert [j.state for j in jobs] == [SUCCEEDED] * len(first)
            assert {j.trainer for j in jobs} == set(TRAINER_HOSTS), "both hosts trained"
            say(
                f"{len(first)} jobs SUCCEEDED in {time.monotonic() - t0:.1f} s on "
                f"{dict(collections.Counter(j.trainer for j in jobs))}, accuracies "
                f"{[round(j.result.test_accuracy, 4) for j in jobs]}"
            )

            # Mid-run, cut the scheduler's NATS server, made leader of the job queue, and kill
            # a trainer that is training.
            where = {n: await asyncio.to_thread(clients, cluster, n) for n in cluster.nats}
            cut = cluster.nats[next(n for n, c in where.items() if "tuner-scheduler" in c)]
            await lead_from(nc, js, cut.name)
            second = await submit(client, range(11, 17), epochs=2)
            victim, lost_job = await busy_trainer(cluster, client, second)
            survivor = next(t for t in TRAINER_HOSTS if t != victim)
            t_cut = time.monotonic()
            network.unplug(cut)
            cluster.trainers[victim].kill()
            cluster.killed.add(victim)
            say(
                f"cut: {cut.name} ({cut.address}: leads {streams.JOBS_STREAM} and its consumer, "
                f"serves {where[cut.name]}) unplugged; "
                f"{victim} killed (SIGKILL) while training job {lost_job}"
            )

            # From here on the test asks the survivors only: the cut node, still reachable
            # through its relay, answers with the view it had before it lost its quorum.
            survivors = [n for n in cluster.nats if n != cut.name]
            _, sjs = await stack.enter_async_context(
                jetstream([cluster.nats_relays[n] for n in survivors])
            )
            stream_leader, consumer_leader = await majority_leader(cluster, sjs, survivors)
            election = time.monotonic() - t_cut
            record_property("leader_election_seconds", round(election, 2))
            say(
                f"{streams.JOBS_STREAM} leader now {stream_leader}, its consumer's "
                f"{consumer_leader}, as {' and '.join(survivors)} both see it: elected "
                f"{election:.1f} s after the cut (leader election time)"
            )

            third = await submit(client, range(21, 23))  # submitted while the node is away
            every = first + second + third
            jobs = await wait_jobs(cluster, client, every, timeout=480)
            say(
                f"all {len(every)} jobs final {time.monotonic() - t_cut:.1f} s after the cut: "
                f"{dict(collections.Counter(job_pb2.JobState.Name(j.state) for j in jobs))}"
            )
            assert [j.state for j in jobs] == [SUCCEEDED] * len(every), [j.error for j in jobs]
            by_id = {j.id: j for j in jobs}
            assert by_id[lost_job].attempts >= 2 and by_id[lost_job].trainer == survivor
            for job in jobs:
                assert len(job.history) == job.hyperparameters.epochs, f"{job.id}: epochs twice"
            say(
                f"job {lost_job}: attempt {by_id[lost_job].attempts} on {survivor}; redelivered "
                f"jobs: {sorted((j.id[:8], j.attempts) for j in jobs if j.attempts > 1)}"
            )

        # Nothing lost, nothing doubled: in MongoDB ...
        mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            f"mongodb://{cluster.mongo}/?directConnection=true", serverSelectionTimeoutMS=5000
        )
        with mongo:
            db = mongo["tuner"]
            docs = list(db.jobs.find({}, {"state": 1, "result": 1}))
            assert sorted(d["_id"] for d in docs) == sorted(every)
            assert {d["state"] for d in docs} == {"SUCCEEDED"} and all(d["result"] for d in docs)
            board = [d["job"]["_id"] for d in db.leaderboard.find({"board": "mnist"})]
            assert sorted(board) == sorted(every)  # MNIST's board, each job once
        say(f"MongoDB: {len(docs)} jobs, all SUCCEEDED with one result; leaderboard {len(board)}")

        # ... in the event stream ...
        events = await retry(lambda: read_events(sjs), "reading events")
        assert set(events) == set(every)
        trained: dict[str, list[int]] = {}
        for job_id, job_events in events.items():
            states = [e.state_changed.job.state for e in job_events if e.HasField("state_changed")]
            assert states.count(SUCCEEDED) == 1, f"{job_id}: {states}"
            trained[job_id] = [e.attempt for e in job_events if e.HasField("succeeded")]
            last = by_id[job_id].attempts
            assert trained[job_id].count(last) == 1, (
                f"{job_id}: attempt {last} reported {trained[job_id].count(last)} results "
                "(a trainer event published twice?)"
            )
            recorded = by_id[job_id].result.test_accuracy
            winner = next(e for e in job_events if e.HasField("succeeded") and e.attempt == last)
            assert winner.succeeded.test_accuracy == recorded, job_id
        again = {j[:8]: a for j, a in trained.items() if len(a) > 1}
        say(
            f"events: {sum(map(len, events.values()))} in {streams.EVENTS_STREAM}, one SUCCEEDED "
            f"state per job, each recording its last attempt's result; trained more than once "
            f"(attempts that reported a result): {again}"
        )

        # ... and in the queue, which is empty.
        queue = await retry(lambda: sjs.stream_info(streams.JOBS_STREAM), "queue")
        consumer = await retry(
            lambda: sjs.consumer_info(streams.JOBS_STREAM, streams.TRAINERS_CONSUMER), "consumer"
        )
        assert queue.state.messages == 0
        assert consumer.num_pending == 0 and consumer.num_ack_pending == 0

        # The node comes back and catches up.
        t_back = time.monotonic()
        network.plug(cut)

        async def caught_up() -> None:
            for name in (str(s.config.name) for s in tuner_streams):
                info = await sjs.stream_info(name)
                peers = info.cluster.replicas if info.cluster else None
                assert peers and len(peers) == REPLICAS - 1, name
                assert all(p.current and not p.offline for p in peers), name

        await retry(caught_up, "the node catching up", timeout=90)
        say(
            f"{cut.name} plugged back: every stream has {REPLICAS} current copies after "
            f"{time.monotonic() - t_back:.1f} s; whole test {time.monotonic() - say.start:.0f} s"
        )
