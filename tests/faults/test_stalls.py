"""Stalls, not crashes: nats-server, SecantusDB, the scheduler or a trainer stopped and continued.

A stalled process (SIGSTOP: a GC pause, a partition, a leader election) keeps its sockets open
and answers nothing, so the calls made to it hang instead of failing. Each test parks one
handler at one call to NATS or the database by stopping processes in an order (the scheduler
or a trainer first, so that events queue up; then NATS or SecantusDB), continues them in a
chosen order, and then checks the same things:

- every job reached its terminal state exactly once: one state_changed event with a terminal
  state on the subject of its run in the TUNER_EVENTS stream;
- a job that succeeded has epochs 1..E in its history, each once;
- a job submitted afterwards succeeds, health answers SERVING, every process still runs, and
  the scheduler logged no traceback.

Each test prints its timeline (what was stopped and continued, when); a failure message
carries it with the tails of the scheduler's and trainers' logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
import nats.errors
import pytest
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, ConsumerInfo, DeliverPolicy

from tests.support.hyperparameters import mlp
from tests.support.stack import RunningStack, StartStack
from tuner.client import TunerClient
from tuner.core import streams
from tuner.sweep_spec import parse
from tuner.v1 import event_pb2, job_pb2, sweep_pb2

pytestmark = [
    pytest.mark.slow,
    # nats-py leaves the socket of a connection it gave up as stale unclosed: the test's own
    # connection, when a stall outlasts its pings (the services are other processes).
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <function StreamWriter.__del__"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]

T = TypeVar("T")

QUEUED = job_pb2.JOB_STATE_QUEUED
RUNNING = job_pb2.JOB_STATE_RUNNING
SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
FAILED = job_pb2.JOB_STATE_FAILED
CANCELLED = job_pb2.JOB_STATE_CANCELLED
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)

ACK_WAIT = "6"  # seconds: a job whose trainer went silent is redelivered soon
CALL_TIMEOUT = 10.0  # seconds for one call of the test's own, made while nothing is stalled
LOG_TAIL = 30  # lines of each log in a failure message

# How long a stalled process stays stopped, where the length is the point of the test.
DATABASE_STALL = 10.0  # past pymongo's 5 s server selection timeout
PUBLISH_STALL = 12.0  # the bug report: NATS came back ~12 s later
NATS_STALL_MAX = 100.0  # waiting for a trainer to give up publishing: at most this
SWEEP_DATABASE_STALL = 20.0  # past the sweep lease (15 s)

# The trainer's log line when it gives up publishing an event (its wording then and now).
DROPPED = re.compile(r"dropped an event after retries|\w+ not published")


def state_name(state: int) -> str:
    return job_pb2.JobState.Name(state)


def describe(job: job_pb2.Job | None) -> str:
    if job is None:
        return "never read"
    epochs = [m.epoch for m in job.history]
    return (
        f"{state_name(job.state)} (run {job.run}, attempts {job.attempts}, epochs {epochs}, "
        f"trainer {job.trainer!r}, error {job.error!r})"
    )


def tail(text: str, lines: int = LOG_TAIL) -> str:
    """The last lines of a log, without the access log's line per call."""
    kept = [line for line in text.splitlines() if " scheduler.access: " not in line]
    return "\n".join(kept[-lines:])


def tracebacks(log: str) -> list[str]:
    """Each traceback in a log, with the line before it and up to 20 lines of it."""
    lines = log.splitlines()
    found = []
    for i, line in enumerate(lines):
        if "Traceback" in line:
            found.append("\n".join(lines[max(0, i - 1) : i + 20]))
    return found


def unread_bytes(port: int) -> int:
    """Bytes waiting unread in the connections a server on `port` accepted: a stopped server's
    callers have sent requests that nobody reads."""
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:  # ESTABLISHED
                total += int(queues.split(":")[1], 16)
    return total


def port_of(url: str) -> int:
    """The port of nats://host:port or mongodb://host:port/?..."""
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1].split("?")[0])


class Timeline:
    """What the test did when, printed as it goes and quoted in failure messages."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self.lines: list[str] = []

    def now(self) -> float:
        return time.monotonic() - self._start

    def note(self, text: str) -> None:
        line = f"[{self.now():7.1f} s] {text}"
        self.lines.append(line)
        print(line, flush=True)


class Stalls:
    """One stack and the processes of it stopped now; every one is continued at teardown."""

    def __init__(self, own_stack: StartStack) -> None:
        self._own_stack = own_stack
        self._running: RunningStack | None = None
        self._paused: dict[str, subprocess.Popen[bytes]] = {}
        self.timeline = Timeline()

    @property
    def running(self) -> RunningStack:
        assert self._running is not None, "start the stack first"
        return self._running

    def start(self, trainers: int = 1, **env: str) -> RunningStack:
        self._running = self._own_stack(trainers=trainers, **env)
        self.note(f"stack up: {trainers} trainer(s), {env or 'default settings'}")
        return self._running

    def note(self, text: str) -> None:
        self.timeline.note(text)

    def pause(self, name: str) -> None:
        process = self.running.stack.process(name)
        assert process.poll() is None, f"{name} exited ({process.returncode}) before the stall"
        process.send_signal(signal.SIGSTOP)
        self._paused[name] = process
        self.note(f"SIGSTOP {name}")

    def resume(self, name: str) -> None:
        self._paused.pop(name).send_signal(signal.SIGCONT)
        self.note(f"SIGCONT {name}")

    def resume_all(self) -> None:
        for name in reversed(list(self._paused)):
            self.resume(name)

    def log(self, name: str) -> str:
        try:
            return self.running.log(name)
        except OSError:
            return ""

    def context(self) -> str:
        """The timeline and the logs' tails, for a failure message."""
        parts = ["--- timeline ---", *self.timeline.lines]
        names = [name for name, _ in self.running.stack.processes]
        for name in dict.fromkeys(n for n in names if n == "scheduler" or n.startswith("trainer")):
            parts += [f"--- {name} log (tail) ---", tail(self.log(name))]
        return "\n".join(parts)


@pytest.fixture
def stalls(own_stack: StartStack) -> Iterator[Stalls]:
    """Continues whatever a test left stopped before own_stack stops the stack."""
    stalls = Stalls(own_stack)
    try:
        yield stalls
    finally:
        stalls.resume_all()


async def until(
    check: Callable[[], Awaitable[T | None]],
    timeout: float,
    what: str,
    context: Callable[[], str] = lambda: "",
    every: float = 0.2,
) -> T:
    """`check()` until it returns something true, for at most `timeout` seconds.

    A call that fails or hangs (longer than CALL_TIMEOUT) counts as not yet.
    """
    deadline = time.monotonic() + timeout
    error: BaseException | None = None
    while True:
        try:
            value = await asyncio.wait_for(check(), CALL_TIMEOUT)
            if value:
                return value
        except (grpc.aio.AioRpcError, nats.errors.Error, TimeoutError, OSError) as failed:
            error = failed
        if time.monotonic() > deadline:
            last = f" (last error: {error!r})" if error is not None else ""
            raise AssertionError(f"{what}: not within {timeout:g} s{last}\n{context()}")
        await asyncio.sleep(every)


class Events:
    """The test's own NATS connection: the event stream as stored, and events as they come."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.live: list[event_pb2.JobEvent] = []
        self._triggers: list[
            tuple[
                Callable[[event_pb2.JobEvent], bool],
                Callable[[], None],
                asyncio.Future[event_pb2.JobEvent],
            ]
        ] = []

    @classmethod
    async def open(cls, url: str) -> Events:
        events = cls(await streams.connect(url, "stall-test"))
        await events.nc.subscribe(streams.EVENTS_SUBJECTS, cb=events._arrived)
        return events

    async def close(self) -> None:
        await streams.close(self.nc)

    async def _arrived(self, msg: Msg) -> None:
        try:
            event = event_pb2.JobEvent.FromString(msg.data)
        except DecodeError:
            return
        self.live.append(event)
        for trigger in list(self._triggers):
            matches, action, done = trigger
            if matches(event) and not done.done():
                self._triggers.remove(trigger)
                _fire(action, event, done)

    def when(
        self, matches: Callable[[event_pb2.JobEvent], bool], action: Callable[[], None]
    ) -> asyncio.Future[event_pb2.JobEvent]:
        """Run `action` as soon as an event that `matches` arrives (or has arrived)."""
        done: asyncio.Future[event_pb2.JobEvent] = asyncio.get_running_loop().create_future()
        for event in self.live:
            if matches(event):
                _fire(action, event, done)
                return done
        self._triggers.append((matches, action, done))
        return done

    async def stored(self, job_id: str, run: int = 1) -> list[event_pb2.JobEvent]:
        """Every event stored on the subject of one run of one job, in order."""
        subject = streams.events_subject(job_id, run)
        info = await self.js.stream_info(streams.EVENTS_STREAM, subjects_filter=subject)
        count = (info.state.subjects or {}).get(subject, 0)
        if not count:
            return []
        sub = await self.js.subscribe(
            subject,
            stream=streams.EVENTS_STREAM,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        events: list[event_pb2.JobEvent] = []
        try:
            while len(events) < count:
                msg = await sub.next_msg(timeout=5)
                event = event_pb2.JobEvent.FromString(msg.data)
                event.sequence = msg.metadata.sequence.stream
                events.append(event)
        finally:
            await sub.unsubscribe()
        return events

    async def has(self, job_id: str, kind: str, run: int = 1) -> bool:
        return any(e.WhichOneof("kind") == kind for e in await self.stored(job_id, run))

    async def consumer(self, stream: str, durable: str) -> ConsumerInfo:
        info: ConsumerInfo = await self.js.consumer_info(stream, durable)
        return info


def _fire(
    action: Callable[[], None],
    event: event_pb2.JobEvent,
    done: asyncio.Future[event_pb2.JobEvent],
) -> None:
    try:
        action()
    except Exception as error:
        done.set_exception(error)
    else:
        done.set_result(event)


def terminal_states(events: list[event_pb2.JobEvent]) -> list[int]:
    return [
        e.state_changed.job.state
        for e in events
        if e.HasField("state_changed") and e.state_changed.job.state in TERMINAL
    ]


def event_kinds(events: list[event_pb2.JobEvent]) -> list[str]:
    out = []
    for e in events:
        kind = e.WhichOneof("kind") or "?"
        if kind == "state_changed":
            kind = state_name(e.state_changed.job.state)
        elif kind != "progress":
            kind = f"{kind}#{e.attempt}"
        out.append(kind)
    # progress events are many: fold runs of them
    folded: list[str] = []
    for kind in out:
        if kind == "progress" and folded and folded[-1].startswith("progress"):
            count = int(folded[-1].partition("x")[2] or 1) + 1
            folded[-1] = f"progress x{count}"
        else:
            folded.append(kind)
    return folded


class Check:
    """The waits and checks every test shares, with the test's context in each failure."""

    def __init__(self, stalls: Stalls, client: TunerClient, events: Events) -> None:
        self.stalls = stalls
        self.client = client
        self.events = events

    async def get(self, job_id: str) -> job_pb2.Job:
        return await asyncio.wait_for(self.client.get(job_id), CALL_TIMEOUT)

    async def submit(self, hp: job_pb2.Hyperparameters) -> job_pb2.Job:
        job = (await asyncio.wait_for(self.client.submit(hp), CALL_TIMEOUT)).job
        self.stalls.note(f"submitted job {job.id} ({hp.epochs} epoch(s), batch {hp.batch_size})")
        return job

    async def state(self, job_id: str, state: int, timeout: float) -> job_pb2.Job:
        last: list[job_pb2.Job] = []

        async def reached() -> job_pb2.Job | None:
            job = await self.client.get(job_id)
            last[:] = [job]
            return job if job.state == state else None

        def context() -> str:
            return f"the job is {describe(last[0] if last else None)}\n{self.stalls.context()}"

        job = await until(reached, timeout, f"job {job_id} {state_name(state)}", context)
        self.stalls.note(f"job {job_id} is {describe(job)}")
        return job

    async def stored(self, job_id: str, kind: str, timeout: float = 120) -> event_pb2.JobEvent:
        """Wait for the job's first event of `kind` in the stream; it carries its sequence."""

        async def first() -> event_pb2.JobEvent | None:
            found = [e for e in await self.events.stored(job_id) if e.WhichOneof("kind") == kind]
            return found[0] if found else None

        what = f"a {kind} event of job {job_id} in the event stream"
        event = await until(first, timeout, what, self.stalls.context)
        self.stalls.note(f"{kind} of job {job_id} is in the event stream at {event.sequence}")
        return event

    async def no_pull_waiting(self, stream: str, durable: str) -> None:
        """A stopped consumer's last pull has expired: nothing more is delivered to it."""

        async def expired() -> bool:
            return (await self.events.consumer(stream, durable)).num_waiting == 0

        await until(expired, 30, f"{durable}'s pull on {stream} expiring", self.stalls.context)

    async def recorder_waits_on_database(self, event: event_pb2.JobEvent) -> None:
        """The resumed scheduler took `event` (and what came before it) from the stream, has
        not acked it, and has asked the stopped database."""

        async def holding() -> bool:
            info = await self.events.consumer(streams.EVENTS_STREAM, streams.SCHEDULER_CONSUMER)
            delivered = info.delivered.stream_seq if info.delivered else 0
            acked = info.ack_floor.stream_seq if info.ack_floor else 0
            return (delivered or 0) >= event.sequence > (acked or 0) and unread_bytes(
                self.db_port
            ) > 0

        await until(
            holding, 30, "the recorder taking events and waiting on the database", self.context
        )
        self.stalls.note(
            f"the recorder holds the {event.WhichOneof('kind')} event ({event.sequence}) "
            "and waits on the stopped database"
        )

    async def recorder_caught_up(self, timeout: float = 60) -> None:
        """Every event in the stream is recorded and acked: no announcement is still due."""

        async def caught_up() -> bool:
            info = await self.events.consumer(streams.EVENTS_STREAM, streams.SCHEDULER_CONSUMER)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await until(caught_up, timeout, "the recorder catching up", self.context)

    def context(self) -> str:
        return self.stalls.context()

    @property
    def db_port(self) -> int:
        return port_of(self.stalls.running.mongo_uri)

    async def trainer_logged(self, name: str, text: str, timeout: float, count: int = 1) -> None:
        async def logged() -> bool:
            return self.stalls.log(name).count(text) >= count

        await until(logged, timeout, f"{name} logging {text!r} {count}x", self.context, every=0.5)
        self.stalls.note(f"{name} logged {text!r} {count}x")

    async def ended_once(self, job_id: str, state: int, epochs: int) -> job_pb2.Job:
        """The job is in `state`, announced once on its run's subject, epochs 1..E once."""
        job = await self.get(job_id)

        async def announced() -> bool:
            return bool(terminal_states(await self.events.stored(job_id, job.run)))

        with contextlib.suppress(AssertionError):  # none at all is reported below
            await until(announced, 60, "a terminal state_changed")
        await self.recorder_caught_up()
        stored = await self.events.stored(job_id, job.run)
        self.stalls.note(f"job {job_id} run {job.run} events: {event_kinds(stored)}")
        assert job.state == state, f"job {job_id} is {describe(job)}\n{self.context()}"
        finals = terminal_states(stored)
        assert finals == [state], (
            f"job {job_id} run {job.run}: terminal state_changed events in the stream "
            f"{[state_name(s) for s in finals]}, expected exactly one {state_name(state)}; "
            f"events {event_kinds(stored)}\n{self.context()}"
        )
        if epochs:
            recorded = [m.epoch for m in job.history]
            assert recorded == list(range(1, epochs + 1)), (
                f"job {job_id}: epochs recorded {recorded}, expected 1..{epochs} once each\n"
                f"{self.context()}"
            )
        return job

    async def still_works(self, seed: int) -> None:
        """A job submitted now succeeds; health is SERVING; no process died; no traceback."""
        late = await self.submit(mlp(seed, batch_size=256))
        await self.state(late.id, SUCCEEDED, timeout=180)
        await self.ended_once(late.id, SUCCEEDED, epochs=1)
        running = self.stalls.running
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, (
            f"health answers {reply.status}\n{self.context()}"
        )
        for name, process in running.stack.processes:
            assert process.poll() is None, f"{name} exited with {process.returncode}"
        found = tracebacks(self.stalls.log("scheduler"))
        assert not found, "the scheduler logged tracebacks:\n" + "\n---\n".join(found)
        self.stalls.note("a new job succeeded, health SERVING, no traceback in the scheduler log")


async def checking(stalls: Stalls, client: TunerClient) -> Check:
    return Check(stalls, client, await Events.open(stalls.running.nats_url))


def final_step_of_last_epoch(job_id: str) -> Callable[[event_pb2.JobEvent], bool]:
    """The progress a trainer reports when the last epoch's training is done: it evaluates now,
    then reports the epoch and the result."""

    def matches(e: event_pb2.JobEvent) -> bool:
        p = e.progress
        return (
            e.job_id == job_id
            and e.HasField("progress")
            and p.epoch == p.total_epochs
            and p.step == p.total_steps
        )

    return matches


# 1. The recorder's database write --------------------------------------------------------


async def test_the_recorder_waits_out_a_stalled_database_write(stalls: Stalls) -> None:
    running = stalls.start(TUNER_ACK_WAIT_SECONDS=ACK_WAIT)
    async with TunerClient(running.address, "alice") as client:
        check = await checking(stalls, client)
        try:
            job = await check.submit(mlp(4101, epochs=2))
            await check.state(job.id, RUNNING, timeout=120)
            stalls.pause("scheduler")
            await check.no_pull_waiting(streams.EVENTS_STREAM, streams.SCHEDULER_CONSUMER)
            # The epoch waits in the stream for the recorder.
            epoch = await check.stored(job.id, "epoch_completed")
            stalls.pause("secantusdb")
            stalls.resume("scheduler")
            await check.recorder_waits_on_database(epoch)
            await asyncio.sleep(DATABASE_STALL)  # the stall itself: its length is the test
            stalls.resume("secantusdb")
            await check.state(job.id, SUCCEEDED, timeout=180)
            await check.ended_once(job.id, SUCCEEDED, epochs=2)
            await check.still_works(4102)
        finally:
            await check.events.close()


# 2. The recorder's publish, after a write held up by the database --------------------------


@pytest.mark.parametrize("blocked_on", ["started", "succeeded"])
async def test_the_recorder_publishes_into_a_stalled_nats_after_a_stalled_write(
    stalls: Stalls, blocked_on: str
) -> None:
    """The bug report's sequence: scheduler stopped while a job trains; SecantusDB stopped;
    scheduler continued (the recorder blocks on the database); NATS stopped; SecantusDB
    continued (the recorder writes the state and publishes state_changed into the stalled
    NATS); NATS continued ~12 s later. The recorder is held on the job's start (it then
    publishes RUNNING) or on its success (it then publishes SUCCEEDED)."""
    seed = 4201 if blocked_on == "started" else 4211
    running = stalls.start(TUNER_ACK_WAIT_SECONDS=ACK_WAIT)
    async with TunerClient(running.address, "alice") as client:
        check = await checking(stalls, client)
        try:
            if blocked_on == "started":
                # The trainer waits until the scheduler is stopped, so that the job's start
                # is the first thing the recorder has to write.
                stalls.pause("trainer-1")
                await check.no_pull_waiting(streams.JOBS_STREAM, streams.TRAINERS_CONSUMER)
                job = await check.submit(mlp(seed, epochs=2))
                stalls.pause("scheduler")
                await check.no_pull_waiting(streams.EVENTS_STREAM, streams.SCHEDULER_CONSUMER)
                stalls.resume("trainer-1")
                held = await check.stored(job.id, "started")
                written = RUNNING
            else:
                job = await check.submit(mlp(seed, epochs=1))
                await check.state(job.id, RUNNING, timeout=120)
                stalls.pause("scheduler")
                await check.no_pull_waiting(streams.EVENTS_STREAM, streams.SCHEDULER_CONSUMER)
                held = await check.stored(job.id, "succeeded")
                written = SUCCEEDED
            stalls.pause("secantusdb")
            stalls.resume("scheduler")
            await check.recorder_waits_on_database(held)
            stalls.pause("nats")
            stalls.resume("secantusdb")
            # The recorder writes the state (read here through the database only)...
            await check.state(job.id, written, timeout=60)
            # ...and publishes its state_changed into the stopped NATS.
            await asyncio.sleep(PUBLISH_STALL)  # the stall itself: its length is the test
            stalls.resume("nats")
            await check.state(job.id, SUCCEEDED, timeout=180)
            epochs = 2 if blocked_on == "started" else 1
            await check.ended_once(job.id, SUCCEEDED, epochs=epochs)
            await check.still_works(seed + 1)
        finally:
            await check.events.close()


# 3. Dispatch: SubmitJob while NATS is stalled ----------------------------------------------


@pytest.mark.parametrize("longer", [0.0, 20.0], ids=["resumed-at-once", "resumed-20s-later"])
async def test_a_job_submitted_into_a_stalled_nats_is_still_queued_and_trains(
    stalls: Stalls, longer: float
) -> None:
    """The job is stored; its publish times out. NATS continues as SubmitJob answers, or 20 s
    later (past the clients' stale-connection detection, so they reconnect)."""
    seed = 4301 if not longer else 4311
    running = stalls.start(TUNER_ACK_WAIT_SECONDS=ACK_WAIT)
    async with TunerClient(running.address, "alice") as client:
        check = await checking(stalls, client)
        try:
            stalls.pause("nats")
            started = time.monotonic()
            try:
                answer = await asyncio.wait_for(client.submit(mlp(seed)), 60)
            except grpc.aio.AioRpcError as error:
                raise AssertionError(
                    f"SubmitJob failed while NATS was stalled: {error.code()} {error.details()}"
                    f"\n{check.context()}"
                ) from error
            job = answer.job
            stalls.note(
                f"SubmitJob answered after {time.monotonic() - started:.1f} s: "
                f"job {job.id} {state_name(job.state)}"
            )
            assert job.state == QUEUED
            if longer:
                await asyncio.sleep(longer)  # the stall itself: its length is the test
            stalls.resume("nats")
            await check.state(job.id, SUCCEEDED, timeout=180)
            await check.ended_once(job.id, SUCCEEDED, epochs=1)
            await check.still_works(seed + 1)
        finally:
            await check.events.close()


# 4. Cancel: CancelJob of a running job while NATS is stalled --------------------------------


async def test_a_job_cancelled_while_nats_is_stalled_ends_cancelled_and_its_trainer_stops(
    stalls: Stalls,
) -> None:
    running = stalls.start(TUNER_ACK_WAIT_SECONDS=ACK_WAIT)
    async with TunerClient(running.address, "alice") as client:
        check = await checking(stalls, client)
        try:
            # Minutes of training: it cannot end by itself while the test waits for the stop.
            job = await check.submit(mlp(4401, epochs=8, batch_size=32))
            await check.state(job.id, RUNNING, timeout=120)
            await check.stored(job.id, "progress")
            stalls.pause("nats")
            cancelling = asyncio.create_task(asyncio.wait_for(client.cancel(job.id), 120))
            # The cancellation is written (read through the database only)...
            await check.state(job.id, CANCELLED, timeout=60)
            # ...then withdrawn and announced into the stopped NATS: past their 5 s timeouts.
            await asyncio.sleep(PUBLISH_STALL)  # the stall itself: its length is the test
            stalls.resume("nats")
            try:
                answer = await cancelling
                stalls.note(f"CancelJob answered {state_name(answer.state)}")
            except grpc.aio.AioRpcError as error:
                stalls.note(f"CancelJob failed: {error.code()} {error.details()}")
            except TimeoutError:
                stalls.note("CancelJob did not answer within 120 s")
            await check.trainer_logged("trainer-1", f"job {job.id} run 1: stopped", timeout=30)
            await check.ended_once(job.id, CANCELLED, epochs=0)
            stored = await check.events.stored(job.id)
            assert not any(e.HasField("succeeded") for e in stored), (
                f"the cancelled job's trainer trained it to the end\n{check.context()}"
            )
            await check.still_works(4402)
        finally:
            await check.events.close()


# 5. The trainer's event publishes -----------------------------------------------------------


async def hold_until_dropped(check: Check, drops: int) -> None:
    """Keep NATS stopped until the trainer has given up `drops` events (its publish retries
    ran out), or NATS_STALL_MAX seconds: a trainer that retries for longer is held that long."""
    stalls = check.stalls
    deadline = time.monotonic() + NATS_STALL_MAX
    while time.monotonic() < deadline:
        given_up = DROPPED.findall(stalls.log("trainer-1"))
        if len(given_up) >= drops:
            stalls.note(f"trainer-1 gave up {len(given_up)} event(s): {given_up}")
            return
        await asyncio.sleep(0.5)
    given_up = DROPPED.findall(stalls.log("trainer-1"))
    stalls.note(
        f"trainer-1 still retrying after {NATS_STALL_MAX:g} s of stalled NATS, gave up {given_up}"
    )


async def test_a_trainer_publishing_into_a_stalled_nats_mid_epoch_loses_no_epoch(
    stalls: Stalls,
) -> None:
    running = stalls.start(TUNER_ACK_WAIT_SECONDS=ACK_WAIT)
    async with TunerClient(running.address, "alice") as client:
        check = await checking(stalls, client)
        try:
            hp = mlp(4501, epochs=3)
            job = await check.submit(hp)
            mid_epoch = check.events.when(
                lambda e: e.job_id == job.id and e.HasField("progress") and e.progress.epoch == 1,
                lambda: stalls.pause("nats"),
            )
            await asyncio.wait_for(mid_epoch, 240)
            await hold_until_dropped(check, drops=2)  # a progress, then an epoch
            stalls.resume("nats")
            await check.state(job.id, SUCCEEDED, timeout=240)
            await check.ended_once(job.id, SUCCEEDED, epochs=3)
            await check.still_works(4502)
        finally:
            await check.events.close()


async def test_a_trainer_whose_result_cannot_be_published_does_not_leave_the_job_running(
    stalls: Stalls,
) -> None:
    """The trainer is stopped as it evaluates the last epoch; NATS is stopped; the trainer
    continues and reports the epoch and the result into the stalled NATS, past its retries."""
    running = stalls.start(TUNER_ACK_WAIT_SECONDS=ACK_WAIT)
    async with TunerClient(running.address, "alice") as client:
        check = await checking(stalls, client)
        try:
            job = await check.submit(mlp(4511, epochs=2))
            evaluating = check.events.when(
                final_step_of_last_epoch(job.id), lambda: stalls.pause("trainer-1")
            )
            await asyncio.wait_for(evaluating, 240)
            stored = await check.events.stored(job.id)
            assert not any(e.HasField("succeeded") for e in stored), (
                f"missed the moment: the result was published before the trainer stopped; "
                f"events {event_kinds(stored)}"
            )
            stalls.pause("nats")
            stalls.resume("trainer-1")
            await hold_until_dropped(check, drops=2)  # the last epoch and the result
            stalls.resume("nats")
            await check.state(job.id, SUCCEEDED, timeout=240)
            await check.ended_once(job.id, SUCCEEDED, epochs=2)
            await check.still_works(4512)
        finally:
            await check.events.close()


# 6. The trainer's ack -----------------------------------------------------------------------

# An ack of a job: "+ACK", or an empty message (nats-py's ack_sync), to the jobs' ack subject.
ACK = re.compile(rb"PUB \$JS\.ACK\.\S*TUNER_JOBS\S*(?: \S+)? (?:0\r\n|4\r\n\+ACK)")


class AckPartition:
    """A TCP relay between one trainer and nats-server that cuts the trainer off at its ack.

    It forwards both ways until the trainer acks a job (see ACK); from that byte on it
    forwards nothing either way, and turns away reconnections, until `heal()`, which closes
    the cut connections so that the trainer connects afresh. In-progress heartbeats (`+WPI`)
    pass.
    """

    def __init__(self, nats_port: int) -> None:
        self._target = nats_port
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._armed = True
        self.cut = asyncio.Event()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut.is_set():
            writer.close()
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return
        self._writers += [writer, upstream]
        await asyncio.gather(
            self._pipe(reader, upstream, watch=True),
            self._pipe(upstream_reader, writer, watch=False),
            return_exceptions=True,
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, watch: bool
    ) -> None:
        seen = b""
        try:
            while data := await reader.read(65536):
                if self.cut.is_set():
                    continue  # partitioned: dropped
                if watch and self._armed:
                    window = seen + data
                    found = ACK.search(window)
                    if found:
                        writer.write(data[: max(0, found.start() - len(seen))])
                        self._armed = False
                        self.cut.set()
                        continue
                    seen = window[-4096:]
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    def heal(self) -> None:
        self.cut.clear()
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def close(self) -> None:
        self.heal()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_a_trainer_cut_off_at_its_ack_leaves_the_job_succeeded_once(
    stalls: Stalls,
) -> None:
    """trainer-1 publishes the result and is cut off from NATS as it acks; NATS is stopped
    right after the success is recorded. The ack does not arrive within the ack wait, so
    JetStream redelivers the job to trainer-2, which trains it again: the redelivered
    attempt's events must change nothing. (trainer-1 sends its retried acks once it
    reconnects: too late, the job went to trainer-2.)"""
    running = stalls.start(trainers=0, TUNER_ACK_WAIT_SECONDS=ACK_WAIT)
    partition = AckPartition(port_of(running.nats_url))
    await partition.start()
    stack = running.stack
    direct = stack.env["TUNER_NATS_URL"]
    stack.env["TUNER_NATS_URL"] = f"nats://127.0.0.1:{partition.port}"
    try:
        stack.start_trainer(1, os.cpu_count() or 1)
    finally:
        stack.env["TUNER_NATS_URL"] = direct
    stalls.note(f"trainer-1 reaches NATS through a relay on port {partition.port}")
    async with TunerClient(running.address, "alice") as client:
        check = await checking(stalls, client)
        try:
            job = await check.submit(mlp(4601, epochs=2))
            await check.state(job.id, RUNNING, timeout=120)
            stack.start_trainer(2, 1)  # takes the redelivery
            stalls.note("trainer-2 started, straight to NATS")
            try:
                await asyncio.wait_for(partition.cut.wait(), 240)
            except TimeoutError:
                raise AssertionError(
                    f"the relay saw no ack of job {job.id}\n{check.context()}"
                ) from None
            stalls.note("trainer-1 acked the job: its link is cut from the ack on")
            done = await check.state(job.id, SUCCEEDED, timeout=60)
            stalls.pause("nats")
            await asyncio.sleep(PUBLISH_STALL)  # the stall itself: its length is the test
            stalls.resume("nats")
            await check.trainer_logged(
                "trainer-2", f"job {job.id} run 1 attempt 2: training", timeout=60
            )
            await check.trainer_logged("trainer-1", "ack never confirmed", timeout=90)
            partition.heal()
            stalls.note("trainer-1's link healed")
            await check.trainer_logged("trainer-2", f"job {job.id} run 1: accuracy", 240)
            await check.recorder_caught_up()
            final = await check.ended_once(job.id, SUCCEEDED, epochs=2)
            stored = await check.events.stored(job.id)
            assert any(e.HasField("succeeded") and e.attempt == 2 for e in stored), (
                f"attempt 2 reported no result: events {event_kinds(stored)}"
            )
            assert final.attempts == done.attempts == 1, (
                f"the redelivery moved the job: {describe(final)}\n{check.context()}"
            )
            assert final.result == done.result, (
                f"the redelivery's result replaced the first: {final.result} != {done.result}"
            )
            await check.still_works(4602)
        finally:
            await check.events.close()
            await partition.close()


# 7. The sweep driver -------------------------------------------------------------------------

SWEEP = """
    name: stalled
    strategy: random
    max_trials: 3
    parallelism: 1
    sampler_seed: 11
    space:
      epochs: [1]
      learning_rate: {min: 0.0005, max: 0.005, log: true}
      batch_size: [512]
      models: [mlp]
      seed: [4701]
"""


async def test_a_sweep_goes_through_a_stalled_database_with_exactly_its_trials(
    stalls: Stalls,
) -> None:
    """The scheduler is stopped while the first trial trains, SecantusDB is stopped once the
    trial's result waits in the stream, the scheduler continues (the recorder and the sweep
    driver wait on the database), and SecantusDB continues 20 s later."""
    running = stalls.start(TUNER_ACK_WAIT_SECONDS=ACK_WAIT)
    async with TunerClient(running.address, "sweeper") as client:
        check = await checking(stalls, client)
        try:
            sweep = await asyncio.wait_for(client.create_sweep(parse(SWEEP)), CALL_TIMEOUT)
            stalls.note(f"created sweep {sweep.id}")

            async def first_trial_running() -> str:
                s = await client.get_sweep(sweep.id)
                if s.trials and s.trials[0].state == RUNNING:
                    return s.trials[0].job_id
                return ""

            first = await until(first_trial_running, 120, "trial 1 running", check.context)
            stalls.pause("scheduler")
            await check.no_pull_waiting(streams.EVENTS_STREAM, streams.SCHEDULER_CONSUMER)
            result = await check.stored(first, "succeeded")
            stalls.pause("secantusdb")
            stalls.resume("scheduler")
            await check.recorder_waits_on_database(result)
            await asyncio.sleep(SWEEP_DATABASE_STALL)  # the stall itself: its length is the test
            stalls.resume("secantusdb")

            last: list[sweep_pb2.Sweep] = []

            async def ended() -> bool:
                s = await client.get_sweep(sweep.id)
                last[:] = [s]
                return s.state != sweep_pb2.SWEEP_STATE_RUNNING

            await until(ended, 300, f"sweep {sweep.id} ending", check.context, every=0.5)
            final = last[0]
            trials = [(t.number, t.job_id, state_name(t.state)) for t in final.trials]
            stalls.note(f"sweep {sweep_pb2.SweepState.Name(final.state)}: trials {trials}")
            assert final.state == sweep_pb2.SWEEP_STATE_SUCCEEDED, check.context()
            assert [t.number for t in final.trials] == [1, 2, 3], f"trials {trials}"
            assert len({t.job_id for t in final.trials}) == 3, f"trials {trials}"
            for trial in final.trials:
                await check.ended_once(trial.job_id, SUCCEEDED, epochs=1)
            owned = await asyncio.wait_for(client.list(page_size=100), CALL_TIMEOUT)
            assert sorted(j.id for j in owned.jobs) == sorted(t.job_id for t in final.trials), (
                f"the sweep's owner has jobs {[j.id for j in owned.jobs]}, not just the trials"
            )
            await check.still_works(4702)
        finally:
            await check.events.close()
