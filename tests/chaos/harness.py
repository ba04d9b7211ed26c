"""Chaos on a whole stack of real processes: two scheduler replicas, two trainers, faults at random.

`Chaos` starts, each on a free port of its own, nats-server (JetStream, file storage), SecantusDB
(on disk, --sync-on-commit: a kill -9 loses nothing acknowledged), two scheduler replicas sharing
them and two trainers, through tuner.stack's Stack, so each is the very process `tuner up` starts;
a killed one is started again on the same port, on the same storage. Faults are drawn from a
seeded random.Random (TUNER_CHAOS_SEED), so that a run can be replayed: the same faults, in the
same order, with the same pauses (the timing of the system in between is its own). `check` then
looks for what the faults may have cost, through the gRPC API, in MongoDB and in the event stream.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import nats
import pymongo
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from store.jobs import boards_of
from tests.support.hyperparameters import mlp
from tuner.client import TunerClient
from tuner.core import streams
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.stack import LOOPBACK, Stack, free_port, wait_until_serving
from tuner.v1 import event_pb2, job_pb2

T = TypeVar("T")

NATS = "nats"
DATABASE = "secantusdb"
SCHEDULERS = ("scheduler-a", "scheduler-b")
TRAINERS = ("trainer-1", "trainer-2")
USER = "chaos"
DB_NAME = "tuner"

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
FINAL = frozenset({SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED})
FINAL_NAMES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
# The scheduler's durable consumer of the event stream redelivers what a killed replica had
# fetched and not acked after its own ack wait (tuner/core/streams.py), whatever TUNER_ACK_WAIT is.
EVENTS_ACK_WAIT_SECONDS = 30.0
CALL_TIMEOUT = 10.0  # a gRPC call to a replica whose database or NATS is paused may hang
LEADERBOARD_SIZE = 50

# Jobs are short MLPs, each distinct: its own seed, with drawn epochs, learning rate and batches.
LEARNING_RATES = (0.0005, 0.001, 0.002, 0.003)
BATCH_SIZES = (128, 256)
EPOCHS = (1, 2)

# kind, target group: each equally likely.
FAULTS = (
    ("kill -9", "trainer"),
    ("kill -9", "scheduler"),
    ("kill -9", NATS),
    ("kill -9", DATABASE),
    ("SIGSTOP", NATS),
    ("SIGSTOP", DATABASE),
)


def env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def chaos_seed() -> int:
    """TUNER_CHAOS_SEED, else a fresh one (printed by the test, so that the run can be replayed)."""
    raw = os.environ.get("TUNER_CHAOS_SEED", "").strip()
    return int(raw) if raw else random.SystemRandom().randrange(1, 2**31)


def expected_id(hp: job_pb2.Hyperparameters) -> str:
    """The id the scheduler derives from the hyperparameters (known even if a submit timed out)."""
    return job_id(canonical_key(normalized(hp)))


def draw_job(rng: random.Random, number: int) -> job_pb2.Hyperparameters:
    return mlp(
        seed=number,
        epochs=rng.choice(EPOCHS),
        learning_rate=rng.choice(LEARNING_RATES),
        batch_size=rng.choice(BATCH_SIZES),
    )


def stream_story(events: list[event_pb2.JobEvent], attempt: int) -> str:
    """An attempt's reports and the states recorded, with their stream sequences: evidence."""
    parts = []
    for e in events:
        kind = e.WhichOneof("kind")
        if kind == "epoch_completed" and e.attempt == attempt:
            parts.append(f"#{e.sequence} epoch {e.epoch_completed.epoch}")
        elif kind in ("started", "succeeded", "failed") and e.attempt == attempt:
            parts.append(f"#{e.sequence} {kind}")
        elif kind == "state_changed":
            job = e.state_changed.job
            state = job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")
            parts.append(f"#{e.sequence} {state} (history {[m.epoch for m in job.history]})")
    return ", ".join(parts)


class Timeline:
    """What happened and when, in seconds since the start: printed at once, kept for reports."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.lines: list[str] = []

    def now(self) -> float:
        return time.monotonic() - self.start

    def note(self, what: str, target: str = "", detail: str = "") -> None:
        line = f"[{self.now():7.1f} s] {what:<12} {target:<12} {detail}".rstrip()
        self.lines.append(line)
        print(line, flush=True)

    def render(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Fault:
    at: float  # seconds since the start
    kind: str  # "kill -9" or "SIGSTOP"
    target: str
    seconds: float  # down (until the restart began) or paused
    took: float = 0.0  # until the target served again (kills)


@dataclass
class ChaosStack(Stack):
    """A Stack whose schedulers are replicas with names of their own, each on a port of its own."""

    ports: dict[str, int] = field(default_factory=dict)

    def start_replica(self, name: str, port: int, timeout: float = 90) -> str:
        address = f"{LOOPBACK}:{port}"
        saved = self.env
        self.env = dict(saved, TUNER_LISTEN=address)
        try:
            process = self._start(name, [sys.executable, "-m", "scheduler"])
        finally:
            self.env = saved
        wait_until_serving(address, process, timeout=timeout)
        return address

    def start_by_name(self, name: str) -> None:
        """Start `name` on its port and storage, the first time or again after it died."""
        if name == NATS:
            self.ports[name] = self.ports.get(name) or free_port()
            self.start_nats(self.ports[name])
        elif name == DATABASE:
            self.ports[name] = self.ports.get(name) or free_port()
            self.start_mongo(self.ports[name], in_memory=False)
        elif name in SCHEDULERS:
            self.ports[name] = self.ports.get(name) or free_port()
            self.start_replica(name, self.ports[name])
        elif name in TRAINERS:
            ready = self.log_text(name).count(f"trainer {name} ready")
            process = self.start_trainer(int(name.rsplit("-", 1)[1]), threads=1)
            deadline = time.monotonic() + 120
            while self.log_text(name).count(f"trainer {name} ready") <= ready:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after 120 s")
                time.sleep(0.2)
        else:
            raise ValueError(name)

    def log_text(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def address(self, name: str) -> str:
        return f"{LOOPBACK}:{self.ports[name]}"


@dataclass
class Report:
    """What `check` found: counts for the summary, and every broken invariant in words."""

    findings: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)  # QUEUED or RUNNING at the end
    lost: list[str] = field(default_factory=list)  # not SUCCEEDED, or missing a record
    doubled: list[str] = field(default_factory=list)  # recorded more than once
    attempts: dict[str, int] = field(default_factory=dict)
    trained_again: dict[str, list[int]] = field(default_factory=dict)  # attempts with a result

    def add(self, kind: list[str] | None, text: str) -> None:
        self.findings.append(text)
        if kind is not None:
            kind.append(text)


class Chaos:
    """The stack, the clients of both replicas, the fault injector and the invariant checks."""

    def __init__(
        self,
        state_dir: Path,
        data_dir: Path,
        seed: int,
        ack_wait: float = 6.0,
        max_deliver: int = 20,
    ) -> None:
        self.seed = seed
        self.ack_wait = ack_wait
        self.timeline = Timeline()
        self.faults: list[Fault] = []
        self.crashes: list[str] = []
        self.submitted: dict[str, job_pb2.Hyperparameters] = {}  # by job id, in order
        self.via: dict[str, str] = {}  # the replica that accepted each job
        self.submit_retries = 0
        self.stack = ChaosStack(state_dir)
        self.stack.env.update(
            TUNER_DATA_DIR=str(data_dir),
            TUNER_DEVICE="cpu",
            TUNER_TORCH_THREADS="1",
            TUNER_ACK_WAIT_SECONDS=f"{ack_wait:g}",
            # Faults must not use up a job's deliveries: a FAILED job here is a lost one.
            TUNER_MAX_DELIVER=str(max_deliver),
            TUNER_DB_NAME=DB_NAME,
            PYTHONUNBUFFERED="1",
        )
        for name in ("TUNER_NATS_URL", "TUNER_MONGO_URI", "TUNER_TOKENS", "TUNER_TOKENS_FILE"):
            self.stack.env.pop(name, None)
        self._rng = random.Random(seed)
        self._jobs_rng = random.Random(f"{seed}-jobs")
        self._busy: set[str] = set()  # processes a fault is handling: the monitor keeps off
        self._stopped: set[str] = set()  # processes under SIGSTOP
        self._retired: set[str] = set()  # killed for good by a test
        self._clients: dict[str, TunerClient] = {}
        self._turn = 0
        self._jobs_made = 0

    # --- the processes ---------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return (NATS, DATABASE, *SCHEDULERS, *TRAINERS)

    def process(self, name: str) -> subprocess.Popen[bytes]:
        return self.stack.process(name)

    @property
    def nats_url(self) -> str:
        return f"nats://{LOOPBACK}:{self.stack.ports[NATS]}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://{LOOPBACK}:{self.stack.ports[DATABASE]}/?directConnection=true"

    def client(self, name: str) -> TunerClient:
        if name not in self._clients:
            self._clients[name] = TunerClient(self.stack.address(name), USER)
        return self._clients[name]

    @property
    def live_replicas(self) -> list[str]:
        return [s for s in SCHEDULERS if s not in self._retired]

    async def start(self) -> None:
        for name in self.names:
            await asyncio.to_thread(self.stack.start_by_name, name)
        self.timeline.note(
            "started",
            detail=f"nats :{self.stack.ports[NATS]}, secantusdb :{self.stack.ports[DATABASE]}, "
            + ", ".join(f"{s} :{self.stack.ports[s]}" for s in SCHEDULERS)
            + f", {', '.join(TRAINERS)}; ack wait {self.ack_wait:g} s; logs in "
            f"{self.stack.state_dir / 'logs'}",
        )

    async def close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.close()
        for _, process in self.stack.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGCONT)  # a stopped process cannot stop
        await asyncio.to_thread(self.stack.stop)

    async def _restart(self, name: str, attempts: int = 5) -> None:
        """Start `name` again; a start that fails (its dependency still recovering) is retried."""
        for attempt in range(1, attempts + 1):
            try:
                await asyncio.to_thread(self.stack.start_by_name, name)
                return
            except Exception as error:
                self.timeline.note("restart failed", name, f"try {attempt}: {error}")
                with contextlib.suppress(Exception):
                    self.process(name).kill()
                await asyncio.sleep(2)
        raise AssertionError(f"{name} would not start again after {attempts} tries")

    async def kill(self, name: str, down: float, restart: bool = True) -> Fault:
        fault = Fault(self.timeline.now(), "kill -9", name, down)
        self._busy.add(name)
        try:
            process = self.process(name)
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait)
            if not restart:
                self._retired.add(name)
                self.timeline.note("kill -9", name, "for good")
                return fault
            await asyncio.sleep(down)
            began = time.monotonic()
            await self._restart(name)
            fault.took = time.monotonic() - began
        finally:
            self._busy.discard(name)
        self.timeline.note(
            "kill -9", name, f"down {down:.1f} s, then serving again {fault.took:.1f} s later"
        )
        return fault

    async def pause(self, name: str, seconds: float) -> Fault:
        fault = Fault(self.timeline.now(), "SIGSTOP", name, seconds)
        process = self.process(name)
        self._busy.add(name)
        self._stopped.add(name)
        try:
            process.send_signal(signal.SIGSTOP)
            await asyncio.sleep(seconds)
        finally:
            process.send_signal(signal.SIGCONT)
            self._stopped.discard(name)
            self._busy.discard(name)
        self.timeline.note("SIGSTOP", name, f"{seconds:.1f} s, then SIGCONT")
        return fault

    def draw_fault(self) -> tuple[float, str, str, float]:
        """(wait before it, kind, target, seconds down or paused), all from the seeded draw."""
        wait = self._rng.uniform(2.0, 5.0)
        kind, group = self._rng.choice(FAULTS)
        if group == "trainer":
            target = self._rng.choice(TRAINERS)
        elif group == "scheduler":
            target = self._rng.choice(SCHEDULERS)
        else:
            target = group
        seconds = self._rng.uniform(0.2, 3.0) if kind == "kill -9" else self._rng.uniform(1.0, 8.0)
        return wait, kind, target, seconds

    async def inject_faults(self, seconds: float) -> None:
        """Faults one after another for `seconds` from now; the last one runs to its end."""
        end = self.timeline.now() + seconds
        while True:
            wait, kind, target, length = self.draw_fault()
            if self.timeline.now() + wait > end:
                return
            await asyncio.sleep(wait)
            if kind == "kill -9":
                self.faults.append(await self.kill(target, length))
            else:
                self.faults.append(await self.pause(target, length))

    async def watch_processes(self, stopping: asyncio.Event) -> None:
        """A process that exits on its own is a finding: noted, then started again."""
        while not stopping.is_set():
            for name in self.names:
                if name in self._busy or name in self._retired:
                    continue
                process = self.process(name)
                if process.poll() is None:
                    continue
                tail = " | ".join(self.stack.log_text(name).splitlines()[-3:])
                self.crashes.append(f"{name} exited with {process.returncode} by itself: {tail}")
                self.timeline.note("CRASH", name, f"exited with {process.returncode}: restarting")
                self._busy.add(name)
                try:
                    await self._restart(name)
                finally:
                    self._busy.discard(name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=0.5)

    # --- the API -----------------------------------------------------------------------------

    async def on_replicas(
        self,
        call: Callable[[TunerClient], Awaitable[T]],
        what: str,
        first: str | None = None,
        timeout: float = 120,
    ) -> tuple[T, str]:
        """`call` on `first` (else the next replica in turn), falling over to the other one."""
        replicas = self.live_replicas
        index = replicas.index(first) if first in replicas else self._turn
        deadline = time.monotonic() + timeout
        while True:
            name = replicas[index % len(replicas)]
            try:
                return await asyncio.wait_for(call(self.client(name)), CALL_TIMEOUT), name
            except (grpc.aio.AioRpcError, TimeoutError) as error:
                last: Exception = error
            index += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: no replica answered in {timeout} s: {last!r}")
            await asyncio.sleep(0.3)

    async def submit(
        self, hp: job_pb2.Hyperparameters, first: str | None = None, record: bool = True
    ) -> str:
        """Through the replicas in turn; a retry of a submit that went through is a duplicate.

        A `record`ed job is one `check` holds to every invariant.
        """
        if first is None:
            first = self.live_replicas[self._turn % len(self.live_replicas)]
            self._turn += 1
        tries = 0

        async def once(client: TunerClient) -> job_pb2.Job:
            nonlocal tries
            tries += 1
            return (await client.submit(hp)).job

        job, name = await self.on_replicas(once, f"submitting seed {hp.seed}", first)
        assert job.id == expected_id(hp), f"{job.id} is not the id of {hp}"
        if record:
            self.submit_retries += tries - 1
            self.submitted[job.id] = hp
            self.via[job.id] = name
        return job.id

    async def submit_new(self) -> str:
        self._jobs_made += 1
        return await self.submit(draw_job(self._jobs_rng, self._jobs_made))

    async def active(self) -> int:
        """Jobs queued or running, as a replica sees them."""
        states = [job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING]

        async def listed(client: TunerClient) -> int:
            return len((await client.list(states, page_size=100)).jobs)

        count, _ = await self.on_replicas(listed, "listing active jobs", timeout=30)
        return count

    async def keep_busy(self, stopping: asyncio.Event, backlog: int = 3) -> None:
        """Submit a new job whenever fewer than `backlog` are queued or running."""
        while not stopping.is_set():
            try:
                if await self.active() < backlog:
                    await self.submit_new()
                    continue
            except AssertionError as error:
                self.timeline.note("submit stalled", detail=str(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=1.0)

    async def serving(self, name: str) -> bool:
        async with grpc.aio.insecure_channel(self.stack.address(name)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            except grpc.aio.AioRpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    # --- settling and checking -----------------------------------------------------------------

    def mongo(self) -> pymongo.MongoClient[dict[str, Any]]:
        return pymongo.MongoClient(self.mongo_uri, serverSelectionTimeoutMS=5000, tz_aware=True)

    def unsettled(self) -> list[str]:
        """Submitted jobs not in a final state in MongoDB."""
        with self.mongo() as client:
            docs = client[DB_NAME].jobs.find({"_id": {"$in": list(self.submitted)}}, {"state": 1})
            final = {d["_id"] for d in docs if d["state"] in FINAL_NAMES}
        return [j for j in self.submitted if j not in final]

    async def queue_drained(self) -> bool:
        nc = await self.connect_nats()
        try:
            js = nc.jetstream(timeout=5)
            consumer = await js.consumer_info(streams.JOBS_STREAM, streams.TRAINERS_CONSUMER)
            return not consumer.num_pending and not consumer.num_ack_pending
        finally:
            await nc.close()

    async def unannounced(self) -> list[str]:
        """Submitted jobs SUCCEEDED in MongoDB whose success is not yet in the event stream: a
        replica killed between the write and the announce leaves that to the survivor, when the
        success is redelivered to it (EVENTS_ACK_WAIT_SECONDS on)."""
        with self.mongo() as client:
            docs = client[DB_NAME].jobs.find(
                {"_id": {"$in": list(self.submitted)}, "state": "SUCCEEDED"}, {"run": 1}
            )
            succeeded = {(d["_id"], int(d["run"])) for d in docs}
        announced = {
            (e.job_id, e.run)
            for e in await self.events()
            if e.HasField("state_changed") and e.state_changed.job.state == SUCCEEDED
        }
        return sorted(jid for jid, run in succeeded - announced)

    async def settle(self, limit: float) -> float | None:
        """Seconds until every submitted job is final, each success announced and the queue
        empty; None past `limit`."""
        began = time.monotonic()
        while time.monotonic() - began < limit:
            try:
                if (
                    not await asyncio.to_thread(self.unsettled)
                    and await self.queue_drained()
                    and not await self.unannounced()
                ):
                    return time.monotonic() - began
            except Exception as error:  # the last restart may still be finishing
                print(f"settling: {error!r}", flush=True)
            await asyncio.sleep(1)
        return None

    def settle_limit(self, job_seconds: float, trainers: int = len(TRAINERS)) -> float:
        """The bound on settling: redeliveries (ack waits) plus the training left to do."""
        left = len(self.unsettled())
        return EVENTS_ACK_WAIT_SECONDS + 4 * self.ack_wait + job_seconds * left / trainers + 30

    async def connect_nats(self) -> Client:
        async def quiet(error: Exception) -> None:
            pass

        return await nats.connect(
            self.nats_url, connect_timeout=5, max_reconnect_attempts=3, error_cb=quiet
        )

    async def events(self) -> list[event_pb2.JobEvent]:
        """Every event in the event stream, in stream order, with its sequence."""
        nc = await self.connect_nats()
        try:
            js = nc.jetstream(timeout=10)
            last = (await js.stream_info(streams.EVENTS_STREAM)).state.last_seq
            config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
            sub = await js.pull_subscribe(
                streams.EVENTS_SUBJECTS, stream=streams.EVENTS_STREAM, config=config
            )
            out: list[event_pb2.JobEvent] = []
            try:
                while not out or out[-1].sequence < last:
                    try:
                        msgs = await sub.fetch(500, timeout=3)
                    except nats.errors.TimeoutError:
                        break
                    for msg in msgs:
                        try:
                            event = event_pb2.JobEvent.FromString(msg.data)
                        except Exception:
                            continue
                        event.sequence = msg.metadata.sequence.stream
                        out.append(event)
            finally:
                await sub.unsubscribe()
            return out
        finally:
            await nc.close()

    async def check(self, replicas: Iterable[str] | None = None) -> Report:
        """Every invariant, for every submitted job; `replicas` must answer SERVING."""
        report = Report()
        submitted = dict(self.submitted)
        with self.mongo() as client:
            db = client[DB_NAME]
            docs = {d["_id"]: d for d in db.jobs.find({})}
            board_docs = list(db.leaderboard.find({}, {"_id": 1}))
        events = await self.events()
        by_run: dict[tuple[str, int], list[event_pb2.JobEvent]] = collections.defaultdict(list)
        for event in events:
            by_run[(event.job_id, event.run)].append(event)

        for jid, hp in submitted.items():
            doc = docs.get(jid)
            if doc is None:
                report.add(report.lost, f"{jid}: submitted, not in MongoDB")
                continue
            report.attempts[jid] = int(doc.get("attempts", 0))
            state = doc["state"]
            if state in ("QUEUED", "RUNNING"):
                report.add(
                    report.stuck,
                    f"{jid}: {state} (attempt {doc.get('attempts')}, trainer "
                    f"{doc.get('trainer')!r}, updated {doc.get('update_time')})",
                )
            elif state != "SUCCEEDED":
                report.add(report.lost, f"{jid}: {state}: {doc.get('error')}")
            elif not doc.get("result"):
                report.add(report.lost, f"{jid}: SUCCEEDED without a result")
            if doc.get("run") != 1:
                report.add(report.doubled, f"{jid}: run {doc.get('run')}, trained as a new run")
            run = int(doc.get("run", 1))
            job_events = by_run.get((jid, run), [])
            epochs = [m["epoch"] for m in doc.get("history") or []]
            if state == "SUCCEEDED" and sorted(epochs) != list(range(1, hp.epochs + 1)):
                counts = collections.Counter(epochs)
                kind = report.doubled if any(n > 1 for n in counts.values()) else report.lost
                report.add(
                    kind,
                    f"{jid}: epochs recorded {epochs} (of {hp.epochs}); in the stream: "
                    + stream_story(job_events, int(doc.get("attempts", 0))),
                )
            finals = [e.state_changed.job.state for e in job_events if e.HasField("state_changed")]
            if state == "SUCCEEDED" and finals.count(SUCCEEDED) != 1:
                names = [job_pb2.JobState.Name(s).removeprefix("JOB_STATE_") for s in finals]
                kind = report.doubled if finals.count(SUCCEEDED) > 1 else report.lost
                report.add(
                    kind,
                    f"{jid}: {finals.count(SUCCEEDED)} SUCCEEDED state_changed events in "
                    f"{streams.EVENTS_STREAM} (its states there: {names})",
                )
            results = sorted({e.attempt for e in job_events if e.HasField("succeeded")})
            if len(results) > 1:
                report.trained_again[jid] = results
            for event in job_events:
                change = event.state_changed.job
                if (
                    event.HasField("state_changed")
                    and change.state == SUCCEEDED
                    and change.attempts != doc.get("attempts")
                ):
                    report.add(
                        None,
                        f"{jid}: SUCCEEDED announced for attempt {change.attempts}, "
                        f"recorded {doc.get('attempts')}",
                    )

        strangers = sorted(set(docs) - set(submitted))
        if strangers:
            report.add(None, f"jobs in MongoDB nobody submitted: {strangers}")
        left = [j for j, d in docs.items() if d["state"] in ("QUEUED", "RUNNING")]
        if set(left) - set(report.stuck):
            report.add(report.stuck, f"QUEUED/RUNNING in MongoDB: {left}")

        # The leaderboards: on each board (a dataset's, a dataset and model's) the best 50
        # successes, each once, in MongoDB; and MNIST's over gRPC.
        board = [d["_id"] for d in board_docs]
        successes = [d for d in docs.values() if d["state"] == "SUCCEEDED" and d.get("result")]
        successes.sort(
            key=lambda d: (
                -d["result"]["test_accuracy"],
                d["result"]["training_seconds"],
                d["_id"],
            )
        )
        ranked: dict[str, list[str]] = collections.defaultdict(list)
        for d in successes:
            for name in boards_of(d):
                ranked[name].append(d["_id"])
        entries = {f"{name} {j}" for name, ids in ranked.items() for j in ids[:LEADERBOARD_SIZE]}
        should = set(ranked["mnist"][:LEADERBOARD_SIZE])
        if len(board) != len(set(board)):
            report.add(report.doubled, f"leaderboard in MongoDB holds doubles: {board}")
        if set(board) != entries:
            report.add(
                None,
                f"leaderboard in MongoDB: missing {sorted(entries - set(board))}, "
                f"extra {sorted(set(board) - entries)}",
            )
        try:
            top, _ = await self.on_replicas(lambda c: c.leaderboard(50), "leaderboard", timeout=30)
            ids = [j.id for j in top]
            if len(ids) != len(set(ids)):
                report.add(report.doubled, f"GetLeaderboard answers doubles: {ids}")
            if set(ids) != should:
                report.add(
                    None,
                    f"GetLeaderboard: missing {sorted(should - set(ids))}, extra "
                    f"{sorted(set(ids) - should)}",
                )
        except AssertionError as error:
            report.add(None, f"GetLeaderboard: {error}")

        # Through the API: each replica tells the same story as MongoDB.
        for name in self.live_replicas:
            for jid, hp in submitted.items():
                try:
                    job = await asyncio.wait_for(self.client(name).get(jid), CALL_TIMEOUT)
                except (grpc.aio.AioRpcError, TimeoutError) as error:
                    report.add(None, f"{name}: GetJob {jid}: {error!r}")
                    break
                doc = docs.get(jid)
                said = job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")
                if doc is not None and said != doc["state"]:
                    report.add(None, f"{name}: GetJob {jid} says {said}, MongoDB {doc['state']}")
                epochs = [m.epoch for m in job.history]
                if job.state == SUCCEEDED and epochs != list(range(1, hp.epochs + 1)):
                    report.add(None, f"{name}: GetJob {jid}: epochs {epochs} of {hp.epochs}")

        # The queue is empty: nothing left to train, nothing trained and never acked.
        try:
            nc = await self.connect_nats()
            try:
                js = nc.jetstream(timeout=5)
                queue = await js.stream_info(streams.JOBS_STREAM)
                consumer = await js.consumer_info(streams.JOBS_STREAM, streams.TRAINERS_CONSUMER)
            finally:
                await nc.close()
            if queue.state.messages or consumer.num_pending or consumer.num_ack_pending:
                report.add(
                    None,
                    f"{streams.JOBS_STREAM} not empty: {queue.state.messages} messages, "
                    f"{consumer.num_pending} pending, {consumer.num_ack_pending} unacked",
                )
        except Exception as error:
            report.add(None, f"reading {streams.JOBS_STREAM}: {error!r}")

        for name in SCHEDULERS if replicas is None else replicas:
            if not await self.serving(name):
                report.add(None, f"{name}: grpc health is not SERVING")
        for name in self.names:
            if name not in self._retired and self.process(name).poll() is not None:
                report.add(None, f"{name} is not running (exit {self.process(name).returncode})")
        for crash in self.crashes:
            report.add(None, f"crash: {crash}")
        return report

    async def wait_final(self, jid: str, first: str | None, timeout: float) -> job_pb2.Job:
        """The job once it is final (or as it is after `timeout`), through the replicas."""

        async def get(client: TunerClient) -> job_pb2.Job:
            return await client.get(jid)

        deadline = time.monotonic() + timeout
        while True:
            found, _ = await self.on_replicas(get, f"getting {jid}", first=first)
            if found.state in FINAL or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.5)

    async def fresh_job(self) -> list[str]:
        """A new job through each live replica, after everything: each must succeed."""
        problems = []
        for name in self.live_replicas:
            self._jobs_made += 1
            hp = draw_job(self._jobs_rng, 10_000 + self._jobs_made)
            try:
                jid = await self.submit(hp, first=name, record=False)
            except AssertionError as error:
                problems.append(f"fresh job through {name}: {error}")
                continue
            found = await self.wait_final(jid, first=name, timeout=180)
            epochs = [m.epoch for m in found.history]
            if found.state != SUCCEEDED or epochs != list(range(1, hp.epochs + 1)):
                problems.append(
                    f"fresh job {jid} through {name}: {job_pb2.JobState.Name(found.state)}, "
                    f"epochs {epochs} of {hp.epochs}, error {found.error!r}"
                )
        return problems

    # --- reporting ------------------------------------------------------------------------------

    def log_excerpts(self, per_log: int = 12) -> str:
        """The warnings and errors of each process's log, for the failure message."""
        pattern = re.compile(r"ERROR|CRITICAL|Traceback|WARNING|exited|giving up", re.I)
        parts = []
        for name in self.names:
            text = self.stack.log_text(name)
            lines = [line for line in text.splitlines() if pattern.search(line)]
            if lines:
                shown = lines[-per_log:]
                parts.append(f"--- {name} ({len(lines)} such lines, last {len(shown)}):")
                parts.extend(f"    {line[:300]}" for line in shown)
        return "\n".join(parts)

    def summary(self, report: Report, settled: float | None, last_fault: float) -> str:
        kinds = collections.Counter(f"{f.kind} {f.target}" for f in self.faults)
        attempts = collections.Counter(report.attempts.values())
        per_replica = collections.Counter(self.via.values())
        return "\n".join(
            [
                f"seed {self.seed} (replay: TUNER_CHAOS_SEED={self.seed})",
                f"jobs: {len(self.submitted)} submitted "
                f"({dict(per_replica)}; {self.submit_retries} submit calls retried)",
                f"faults: {len(self.faults)}: {dict(sorted(kinds.items()))}; "
                f"last ended at {last_fault:.1f} s",
                f"attempts per job: {dict(sorted(attempts.items()))} (attempts: jobs)",
                "jobs that reported a result in more than one attempt: "
                f"{ {j[:8]: a for j, a in report.trained_again.items()} }",
                "settled "
                + (f"{settled:.1f} s after the last fault" if settled is not None else "NEVER")
                + " (all submitted jobs final, successes announced, queue empty)",
                f"stuck {len(report.stuck)}, lost {len(report.lost)}, "
                f"doubled {len(report.doubled)}, crashes {len(self.crashes)}, "
                f"findings {len(report.findings)}",
            ]
        )
