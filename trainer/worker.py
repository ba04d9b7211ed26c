"""The trainer's NATS side: pull one job at a time, train it in a thread, report events."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from trainer.checkpoints import CHUNK_BYTES, Store
from trainer.config import Config
from trainer.data import DataCache, Dataset, DatasetMissing
from trainer.metrics import Metrics
from trainer.runs import Run
from trainer.training import Cancelled, Diverged, pick_device, train
from trainer.warm import warm_up
from tuner.core import streams
from tuner.core.consume import consume
from tuner.core.retry import Backoff, retry
from tuner.v1 import event_pb2, job_pb2

log = logging.getLogger(__name__)

# A trained job's models are stored once the next job has begun, which storing them would slow
# (the trainer idle meanwhile): if one arrives this soon, and begins training this soon after.
NEXT_JOB_ARRIVAL = 0.02
NEXT_JOB_START = 0.1


@dataclass
class Successor:
    """The job after a trained one, which that one's models wait for."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    began: asyncio.Event = field(default_factory=asyncio.Event)  # training, or over

    async def wait(self) -> None:
        """Until the next job has begun training, or none arrived within NEXT_JOB_ARRIVAL."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.arrived.wait(), NEXT_JOB_ARRIVAL)
            await asyncio.wait_for(self.began.wait(), NEXT_JOB_START)


@dataclass
class Current:
    job_id: str
    run: int
    stop: threading.Event = field(default_factory=threading.Event)
    progress: job_pb2.Progress | None = None  # the latest, for the trainer's announcements


class Worker:
    def __init__(
        self, config: Config, nc: Client, js: JetStreamContext, metrics: Metrics | None = None
    ) -> None:
        self._config = config
        self._metrics = metrics or Metrics()
        self._nc = nc
        self._js = js
        self._data = DataCache(config.data_dir)
        self._device = pick_device(config.device)
        self._checkpoints = Store(nc, js, min(CHUNK_BYTES, nc.max_payload // 2 or CHUNK_BYTES))
        self._cleanups: set[asyncio.Task[None]] = set()  # finished runs' checkpoints going
        self._current: Current | None = None
        self._finishing: asyncio.Task[None] | None = None  # the last trained job's success
        self._successor = Successor()  # of the last trained job
        self._cancelled: collections.deque[tuple[str, int]] = collections.deque(maxlen=1000)
        self._stopping = asyncio.Event()
        self.jobs_done = 0
        self.ready = False  # warmed up: only then does it take jobs
        self.changed = asyncio.Event()  # set when ready, or a job is taken or ends: announce it

    @property
    def device(self) -> str:
        return str(self._device)

    @property
    def current(self) -> Current | None:
        return self._current

    async def listen(self, stopping: asyncio.Event) -> None:
        """Hear cancellations, and stop the running job when the trainer stops."""
        self._stopping = stopping
        await self._nc.subscribe(streams.CANCEL_SUBJECTS, cb=self._on_cancel)
        log.info("trainer %s on %s: warming up", self._config.name, self._device)

    async def warm_up(self) -> None:
        """Once: load the warm data sets and run torch, in a thread; then say it is ready."""
        if self.ready:
            return
        warmed = await asyncio.to_thread(
            warm_up, self._config.warm_datasets, self._data, self._device, self._stopping.is_set
        )
        if self._stopping.is_set():
            return
        self.ready = True
        self.changed.set()
        log.info("trainer %s ready on %s (%s)", self._config.name, self._device, warmed)

    async def run(self) -> None:
        """Warm up, then take jobs one at a time until the trainer stops."""
        await self.warm_up()
        if self._stopping.is_set():
            return
        try:
            await consume(
                self._js,
                streams.JOBS_STREAM,
                streams.TRAINERS_CONSUMER,
                self._handle,
                self._stopping,
                batch=1,
                acks=False,
            )
        finally:
            await self.finished()

    async def hand_back(self) -> None:
        """Once stopping: stop the running job; it goes back to the queue, not to FAILED."""
        await self._stopping.wait()
        if self._current is not None:
            self._current.stop.set()

    async def _on_cancel(self, msg: Msg) -> None:
        try:
            notice = event_pb2.JobCancellation.FromString(msg.data)
        except DecodeError:
            log.warning("dropped a malformed cancellation on %s", msg.subject)
            return
        self._cancelled.append((notice.job_id, notice.run))
        current = self._current
        if current and (current.job_id, current.run) == (notice.job_id, notice.run):
            log.info("job %s run %d: cancelled, stopping", notice.job_id, notice.run)
            current.stop.set()

    async def _handle(self, msg: Msg) -> None:
        try:
            request = event_pb2.TrainRequest.FromString(msg.data)
        except DecodeError:
            log.warning(
                "dropped a malformed job message (stream sequence %s)", msg.metadata.sequence
            )
            await msg.term()
            return
        current = Current(request.job_id, request.run)
        self._current = current
        self.changed.set()
        successor = self._successor
        successor.arrived.set()
        try:
            if (request.job_id, request.run) in self._cancelled:
                log.info(
                    "job %s run %d was cancelled before it started", request.job_id, request.run
                )
                await msg.ack()
                return
            await self._train(request, msg, current, successor)
        finally:
            successor.began.set()
            self._metrics.busy.set(0)
            self._current = None
            self.jobs_done += 1
            self.changed.set()

    async def _train(
        self, request: event_pb2.TrainRequest, msg: Msg, current: Current, successor: Successor
    ) -> None:
        attempt = msg.metadata.num_delivered
        events = Events(self._js, request.job_id, request.run, attempt)
        loop = asyncio.get_running_loop()
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        log.info("job %s run %d attempt %d: training", request.job_id, request.run, attempt)
        # Sent in order before the epochs by the events' sender, while the job gets going.
        events.enqueue(
            "started", event_pb2.JobStarted(trainer=self._config.name, device=self.device)
        )
        began = self._metrics.started()
        hp = request.hyperparameters
        checkpoints = Run(
            self._checkpoints, request.job_id, request.run, hp, self._device.type, loop
        )
        restored = await checkpoints.restore()
        if restored is not None:  # reported at once, with the attempt that trained each
            for metrics in restored.reported(request.job_id, request.run):
                events.enqueue("epoch_completed", metrics)

        def report(kind: str, message: Message) -> None:
            if isinstance(message, job_pb2.Progress):
                current.progress = message
            loop.call_soon_threadsafe(events.enqueue, kind, message)

        def work() -> tuple[job_pb2.Result, Dataset]:
            data = self._data.get(hp.dataset, self._device)
            result = train(
                hp,
                data,
                self._device,
                on_progress=lambda p: report("progress", p),
                on_epoch=lambda m: report("epoch_completed", m),
                should_stop=current.stop.is_set,
                progress_interval=self._config.progress_interval,
                start=restored.state if restored is not None else None,
                on_state=checkpoints.on_state,
                attempt=attempt,
            )
            done = restored.epoch if restored is not None else 0
            if trained := checkpoints.last.epochs[done:] if checkpoints.last else ():
                seconds = sum(m.training_duration.ToTimedelta().total_seconds() for m in trained)
                self._metrics.trained(len(data.train.labels) * len(trained), seconds)
            return result, data

        successor.began.set()
        try:
            result, data = await asyncio.to_thread(work)
        except Cancelled:
            await events.flush()
            if self._stopping.is_set():
                await settle(msg.nak, "nak")
                log.info(
                    "job %s run %d: handed back for another trainer", request.job_id, request.run
                )
                self._metrics.ended(began, "handed_back")
            else:
                await acknowledge(msg)
                log.info("job %s run %d: stopped", request.job_id, request.run)
                self._metrics.ended(began, "cancelled")
            return
        except (DatasetMissing, Diverged) as error:
            failure = "diverged" if isinstance(error, Diverged) else "dataset_missing"
            ended = await self._end(events, msg, "failed", event_pb2.JobFailure(reason=str(error)))
            self._metrics.ended(began, "failed" if ended else "handed_back", failure)
            return
        except Exception as error:
            log.exception("job %s run %d: training raised", request.job_id, request.run)
            reason = f"{type(error).__name__}: {error}"
            ended = await self._end(events, msg, "failed", event_pb2.JobFailure(reason=reason))
            self._metrics.ended(began, "failed" if ended else "handed_back", "error")
            return
        finally:
            heartbeat.cancel()
        # The next job need not wait for this one's models and success: one job at a time does.
        await self.finished()
        self._successor = Successor()
        self._finishing = asyncio.create_task(
            self._succeed(request, msg, events, checkpoints, result, data, began, self._successor)
        )

    async def finished(self) -> None:
        """Wait until the last trained job's models are stored and its success reported."""
        if self._finishing is not None:
            await asyncio.shield(self._finishing)

    async def _succeed(
        self,
        request: event_pb2.TrainRequest,
        msg: Msg,
        events: Events,
        checkpoints: Run,
        result: job_pb2.Result,
        data: Dataset,
        began: float,
        successor: Successor,
    ) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            await successor.wait()
            await checkpoints.store_final(data)  # before the success: a SUCCEEDED job has them
        except Exception:
            log.exception("job %s run %d: its models were not stored", request.job_id, request.run)
        finally:
            heartbeat.cancel()
        try:
            ended = await self._end(events, msg, "succeeded", result)
        except Exception:  # unreported and unsettled: the ack wait hands it out again
            log.exception("job %s run %d: success not reported", request.job_id, request.run)
            ended = False
        if ended:
            accuracy = result.test_accuracy
            log.info("job %s run %d: accuracy %.4f", request.job_id, request.run, accuracy)
            self._metrics.ended(began, "succeeded")
            # Beside the next job, which need not wait for it.
            cleanup = asyncio.create_task(checkpoints.finish())
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanups.discard)
        else:
            self._metrics.ended(began, "handed_back")

    async def _end(self, events: Events, msg: Msg, kind: str, report: Message) -> bool:
        """Publish the job's ending, then settle its message; never settle an unreported ending.

        The ending is retried for as long as NATS is unreachable, the job kept alive meanwhile;
        if the trainer stops first, the job goes back to the queue (nak) for another trainer.
        """
        if kind == "failed":
            log.warning("job %s run %d failed: %s", events.job_id, events.run, report)
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            await events.flush()
            published = await events.publish(kind, report, stopping=self._stopping)
        finally:
            heartbeat.cancel()
        if not published:
            log.warning(
                "job %s run %d: its ending was not published: handing it back",
                events.job_id, events.run,
            )  # fmt: skip
            await settle(msg.nak, "nak")
        elif kind == "succeeded":
            await acknowledge(msg)
        else:
            await settle(msg.term, "term")
        return published

    async def _heartbeat(self, msg: Msg) -> None:
        """Tell JetStream the job is alive well within the ack wait."""
        while True:
            await asyncio.sleep(self._config.queue.ack_wait_seconds / 3)
            try:
                await msg.in_progress()
            except Exception as error:
                log.warning("heartbeat failed: %s", error)


async def settle(action: Callable[[], Awaitable[None]], what: str) -> None:
    """nak or term; if NATS does not take it, the ack wait redelivers the job all the same."""
    try:
        await action()
    except Exception as error:
        log.warning("%s not delivered: %r", what, error)


async def acknowledge(msg: Msg) -> None:
    """Ack and wait for JetStream to confirm: a lost ack would have the job trained again."""
    try:
        await retry(lambda: msg.ack_sync(timeout=5), "ack", log, backoff=Backoff(), attempts=5)
    except Exception as error:
        log.error("ack never confirmed, the job may be delivered again: %r", error)


class Events:
    """One job run's events, published in order by one task; a newer progress replaces an older."""

    def __init__(self, js: JetStreamContext, job_id: str, run: int, attempt: int) -> None:
        self._js = js
        self.job_id = job_id
        self.run = run
        self._attempt = attempt
        self._subject = streams.events_subject(job_id, run)
        self._published = 0  # numbers the events, so a retried publish is stored once
        self._epochs: list[job_pb2.EpochMetrics] = []  # all of them go with the success
        self._pending: collections.deque[tuple[str, Message]] = collections.deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._sender = asyncio.create_task(self._send())

    def enqueue(self, kind: str, message: Message) -> None:
        if isinstance(message, job_pb2.EpochMetrics):
            self._epochs.append(message)
        if kind == "progress" and self._pending and self._pending[-1][0] == "progress":
            self._pending[-1] = (kind, message)
        else:
            self._pending.append((kind, message))
        self._drained.clear()
        self._wake.set()

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                kind, message = self._pending[0]
                try:
                    await self.publish(kind, message)
                except Exception:  # a fault in making the event: the rest still go
                    log.exception("job %s: a %s event could not be made", self.job_id, kind)
                self._pending.popleft()
            self._drained.set()

    async def flush(self) -> None:
        """Wait until every queued event is published, then stop the sender."""
        await self._drained.wait()
        self._sender.cancel()

    async def publish(
        self, kind: str, message: Message, stopping: asyncio.Event | None = None
    ) -> bool:
        """Publish one event; False if it could not be.

        With `stopping`, retries until published or stopping; else gives up after ~20 s
        (a lost progress or epoch report is made good by the success, which carries all).
        """
        event = event_pb2.JobEvent(job_id=self.job_id, run=self.run, attempt=self._attempt)
        getattr(event, kind).CopyFrom(message)
        if kind == "succeeded":
            event.epochs.extend(self._epochs)
        event.time.GetCurrentTime()
        self._published += 1
        message_id = f"{self.job_id}.{self.run}.{self._attempt}.{self._published}"
        try:
            await retry(
                lambda: self._js.publish(
                    self._subject,
                    event.SerializeToString(),
                    stream=streams.EVENTS_STREAM,
                    headers={"Nats-Msg-Id": message_id},
                ),
                f"job {self.job_id}: publishing {kind}",
                log,
                backoff=Backoff(first=0.1, cap=5.0 if stopping else 10.0),
                attempts=None if stopping else 7,
                stopping=stopping,
            )
        except Exception as error:
            log.error("job %s: %s not published: %r", self.job_id, kind, error)
            return False
        return True
