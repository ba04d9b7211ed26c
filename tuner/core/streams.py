"""The NATS layout shared by the scheduler and the trainers: names, streams, connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError

from tuner.core import env as settings
from tuner.core.retry import Backoff

log = logging.getLogger(__name__)

JOBS_STREAM = "TUNER_JOBS"
JOBS_SUBJECT = "tuner.jobs"
TRAINERS_CONSUMER = "trainers"

EVENTS_STREAM = "TUNER_EVENTS"
EVENTS_SUBJECTS = "tuner.events.>"
SCHEDULER_CONSUMER = "scheduler"
# Sweep changes share the events stream, outside the scheduler consumer's filter.
SWEEPS_SUBJECTS = "tuner.sweeps.>"

CANCEL_SUBJECTS = "tuner.cancel.*"

# Core NATS, no stream: a scheduler recorded news of a job (a state, an epoch), so that
# the sweep driver following it, on whichever replica, looks again at once.
RECORDED_SUBJECTS = "tuner.recorded.*"

# Trainers announce themselves on core NATS (soft state, no stream): every
# TRAINER_ANNOUNCE_SECONDS, and a trainer silent for TRAINER_SILENCE_SECONDS is gone.
TRAINERS_SUBJECTS = "tuner.trainers.*"
TRAINER_ANNOUNCE_SECONDS = 2.0
TRAINER_SILENCE_SECONDS = 3 * TRAINER_ANNOUNCE_SECONDS

# JetStream announces a job that used up its deliveries here; a stream keeps the notices
# so that none is missed while the scheduler is down.
ADVISORIES_STREAM = "TUNER_ADVISORIES"
MAX_DELIVERIES_SUBJECT = (
    f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.{TRAINERS_CONSUMER}"
)

DUPLICATE_WINDOW_SECONDS = 600.0

# The JetStream object store of runs' checkpoints and final models (see trainer/checkpoints.py).
CHECKPOINTS_BUCKET = "TUNER_CHECKPOINTS"
CHECKPOINTS_MAX_BYTES = 4 << 30


def checkpoint_object(lineage: str, device_type: str, epoch: int) -> str:
    """A run's state after `epoch`, shared by the jobs of its lineage on one kind of device
    (a CPU and a GPU compute the same epochs in different bits)."""
    return f"runs/{lineage}/{device_type}/epoch-{epoch:04d}"


def model_object(job_id: str, format_name: str) -> str:
    """A SUCCEEDED job's final model: format_name is "state-dict" or "exported"."""
    return f"models/{job_id}/{format_name}"


def events_subject(job_id: str, run: int) -> str:
    """Every event of one run of one job goes to its own subject."""
    return f"tuner.events.{job_id}.{run}"


def sweep_subject(sweep_id: str) -> str:
    """Every change of one sweep goes to its own subject."""
    return f"tuner.sweeps.{sweep_id}"


def cancel_subject(job_id: str) -> str:
    return f"tuner.cancel.{job_id}"


def recorded_subject(job_id: str) -> str:
    return f"tuner.recorded.{job_id}"


def trainer_subject(name: str) -> str:
    """One subject token for the trainer's name: what NATS reserves becomes '_'."""
    token = "".join("_" if c in ".*> \t\r\n" else c for c in name) or "_"
    return f"tuner.trainers.{token}"


@dataclass(frozen=True)
class QueuePolicy:
    """How long a trainer may stay silent before its job is redelivered, and how often."""

    ack_wait_seconds: float = 30.0
    max_deliver: int = 3
    replicas: int = 1  # copies of each stream a NATS cluster keeps (TUNER_STREAM_REPLICAS)
    checkpoints_max_bytes: int = CHECKPOINTS_MAX_BYTES  # TUNER_CHECKPOINTS_MAX_BYTES
    # How long TUNER_EVENTS keeps an event (TUNER_EVENTS_MAX_AGE_SECONDS): a watcher of an
    # older job gets its stored state, without the events it no longer holds.
    events_max_age_seconds: float = 7 * 86400

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> QueuePolicy:
        """The settings the scheduler and every trainer read alike; raises ConfigError."""
        return cls(
            ack_wait_seconds=settings.number(env, "TUNER_ACK_WAIT_SECONDS", 30.0),
            max_deliver=settings.integer(env, "TUNER_MAX_DELIVER", 3),
            replicas=settings.integer(env, "TUNER_STREAM_REPLICAS", 1, maximum=5),
            checkpoints_max_bytes=settings.integer(
                env, "TUNER_CHECKPOINTS_MAX_BYTES", CHECKPOINTS_MAX_BYTES, minimum=1 << 20
            ),
            events_max_age_seconds=settings.number(
                env, "TUNER_EVENTS_MAX_AGE_SECONDS", 7 * 86400.0
            ),
        )


def servers(url: str) -> list[str]:
    """TUNER_NATS_URL may name several servers of one cluster, comma-separated."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def connect(url: str, name: str, ca_file: str = "") -> Client:
    """A connection that reconnects forever and logs, instead of printing, its troubles.

    `ca_file` verifies a TLS server (tls:// URLs).
    """
    tls = ssl.create_default_context(cafile=ca_file) if ca_file else None

    async def on_error(error: Exception) -> None:
        log.warning("nats error: %s", error)

    async def on_disconnected() -> None:
        log.warning("nats disconnected")

    async def on_reconnected() -> None:
        log.info("nats reconnected")

    async def on_closed() -> None:
        log.info("nats connection closed")

    return await nats.connect(
        servers(url),
        name=name,
        # A server cut off without closing its connections is left within ~20 s, not minutes.
        ping_interval=5,
        max_outstanding_pings=3,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        allow_reconnect=True,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        closed_cb=on_closed,
        tls=tls,
    )


async def ensure_streams(js: JetStreamContext, policy: QueuePolicy) -> None:
    """Declare the streams and durable consumers; safe to call from every process, any time."""
    streams = [
        StreamConfig(
            name=JOBS_STREAM,
            subjects=[JOBS_SUBJECT],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=policy.replicas,
        ),
        StreamConfig(
            name=EVENTS_STREAM,
            subjects=[EVENTS_SUBJECTS, SWEEPS_SUBJECTS],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=policy.events_max_age_seconds,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=policy.replicas,
        ),
        StreamConfig(
            name=ADVISORIES_STREAM,
            subjects=[MAX_DELIVERIES_SUBJECT],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=policy.replicas,
        ),
    ]
    for config in streams:
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
    consumers = [
        (
            JOBS_STREAM,
            ConsumerConfig(
                durable_name=TRAINERS_CONSUMER,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=policy.ack_wait_seconds,
                max_deliver=policy.max_deliver,
                deliver_policy=DeliverPolicy.ALL,
            ),
        ),
        (
            EVENTS_STREAM,
            ConsumerConfig(
                durable_name=SCHEDULER_CONSUMER,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=30.0,
                filter_subject=EVENTS_SUBJECTS,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=1000,
            ),
        ),
        (
            ADVISORIES_STREAM,
            ConsumerConfig(
                durable_name=SCHEDULER_CONSUMER,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=30.0,
                deliver_policy=DeliverPolicy.ALL,
            ),
        ),
    ]
    for stream, consumer in consumers:
        try:
            await js.add_consumer(stream, consumer)
        except BadRequestError as error:
            log.warning("consumer %s on %s kept as it is: %s", consumer.durable_name, stream, error)
    await ensure_checkpoints(js, policy)


async def ensure_checkpoints(js: JetStreamContext, policy: QueuePolicy) -> None:
    """The object store bucket of checkpoints and models, made or brought to `policy`.

    Making it is idempotent (the same config again is accepted); a bucket made with another
    cap or replica count is updated to this one.
    """
    config = ObjectStoreConfig(
        storage=StorageType.FILE,
        replicas=policy.replicas,
        max_bytes=policy.checkpoints_max_bytes,
        description="tuner checkpoints and final models",
    )
    try:
        await js.create_object_store(CHECKPOINTS_BUCKET, config=config)
    except BadRequestError:  # the bucket's stream exists with another configuration
        info = await js.stream_info(f"OBJ_{CHECKPOINTS_BUCKET}")
        stream = info.config
        stream.max_bytes = policy.checkpoints_max_bytes
        stream.num_replicas = policy.replicas
        stream.description = config.description
        await js.update_stream(stream)


async def connect_when_up(
    url: str, name: str, ca_file: str, stopping: asyncio.Event
) -> Client | None:
    """`connect`, retried until a server answers; None if `stopping` is set meanwhile."""
    backoff = Backoff(first=0.5, cap=5.0)
    while not stopping.is_set():
        try:
            return await connect(url, name, ca_file)
        except Exception as error:  # nats-py raises several kinds while no server answers
            log.warning("cannot reach NATS yet: %r", error)
            await backoff.wait(stopping)
    return None


async def close(nc: Client, timeout: float = 2.0) -> None:
    """Drain the connection, or close it if NATS does not answer: quietly, whatever is down.

    A drain is only begun once NATS has answered a ping: nats-py's drain, cut short, leaves
    a failed future behind (a traceback at exit) and then waits out a flush of its own.
    """
    try:
        await asyncio.wait_for(nc.flush(), timeout)
        await asyncio.wait_for(nc.drain(), timeout)
    except Exception as error:
        log.info("NATS did not drain (%r): closing", error)
        with contextlib.suppress(Exception):
            await nc.close()
