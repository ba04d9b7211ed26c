"""Wiring: MongoDB, NATS, the gRPC server, and one shutdown sequence."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from nats.aio.client import Client
from nats.js import JetStreamContext

from scheduler.advisories import GiveUps
from scheduler.analysis import AnalysisService
from scheduler.config import Config
from scheduler.dispatch import Dispatcher
from scheduler.fanout import EventHub
from scheduler.interceptors import server_interceptors
from scheduler.jobs import Jobs
from scheduler.metrics import Metrics, Refresher
from scheduler.outages import OUTAGES
from scheduler.reconciler import Reconciler
from scheduler.recorder import Recorder
from scheduler.retention import Retention
from scheduler.service import TunerService
from scheduler.status import Status
from scheduler.sweeps.announce import Announcer
from scheduler.sweeps.driver import SweepDriver
from scheduler.sweeps.service import SweepService
from scheduler.trainers import Trainers
from store import points
from store.jobs import JobStore
from store.sweeps import SweepStore
from tuner.core import metrics as exporter
from tuner.core import streams
from tuner.core.retry import Backoff
from tuner.core.supervise import Supervisor, until_either
from tuner.v1 import (
    analysis_pb2,
    analysis_pb2_grpc,
    sweep_pb2,
    sweep_pb2_grpc,
    tuner_service_pb2,
    tuner_service_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAME = tuner_service_pb2.DESCRIPTOR.services_by_name["TunerService"].full_name
SWEEP_SERVICE_NAME = sweep_pb2.DESCRIPTOR.services_by_name["SweepService"].full_name
ANALYSIS_SERVICE_NAME = analysis_pb2.DESCRIPTOR.services_by_name["AnalysisService"].full_name
MAX_MESSAGE_BYTES = 1024 * 1024
# grpc core holds the calls the server has not yet taken up, and the aio server takes one up a
# turn of its event loop: while the loop writes events to thousands of watchers, a burst of new
# calls waits there. By default grpc drops them at random past 1,000 waiting, all past 3,000,
# and any that waited 30 s (CANCELLED, never seen by the servicer): 5,000 watchers connecting
# at once lost 1,949 (RESULTS.md, row 3b). They now wait; a client's deadline still bounds it.
WAITING_CALLS = 20_000
WAITING_SECONDS = 300
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.server.max_pending_requests", WAITING_CALLS),
    ("grpc.server.max_pending_requests_hard_limit", WAITING_CALLS),
    ("grpc.server_max_unrequested_time_in_server", WAITING_SECONDS),
]
CLOSE_SECONDS = 2.0  # for each connection, NATS and the database, at the end
# Python's collector: a young collection every 10,000 allocations (its default 700), a middle
# one every 20 young ones (10), a full one every 100 middle ones (10). See settle_heap.
GC_THRESHOLDS = (10_000, 20, 100)


async def main(config: Config) -> int:
    """Serve until SIGINT/SIGTERM (0) or until a loop cannot resume (1)."""
    metrics = Metrics()
    # First of all: a port in use ends the start with one line (ConfigError).
    stop_metrics = (
        exporter.serve(metrics.registry, config.metrics_port) if config.metrics_port else None
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)

    store = JobStore.connect(config.mongo_uri, config.database)
    nc = await streams.connect_when_up(
        config.nats_url, "tuner-scheduler", config.nats_ca_file, stopping
    )
    if nc is None:
        await store.close()
        return 0
    js = nc.jetstream()
    sweeps = SweepStore(store.client, config.database)
    if not await _prepare(store, sweeps, js, config, stopping):
        await _close(nc, store)
        return 0
    dispatcher = Dispatcher(nc, js, store)
    jobs = Jobs(store, dispatcher, config.max_active_per_user, metrics)
    announcer = Announcer(js, sweeps)
    driver = SweepDriver(
        sweeps, store, jobs, announcer, f"{socket.gethostname()}-{os.getpid()}", metrics=metrics
    )
    await driver.listen(nc)

    server = grpc.aio.server(
        interceptors=server_interceptors(config.tokens, metrics),
        options=SERVER_OPTIONS,
    )
    trainers = Trainers()
    await trainers.subscribe(nc)
    hub = EventHub(js)
    metrics.count_watchers(lambda: hub.watching)
    metrics.count_trainers(trainers.count)
    tuner_service = TunerService(
        store,
        jobs,
        js,
        trainers,
        Status(nc, js, store, trainers),
        hub=hub,
        metrics=metrics,
        retention=config.retention,
    )
    tuner_service_pb2_grpc.add_TunerServiceServicer_to_server(tuner_service, server)
    sweep_pb2_grpc.add_SweepServiceServicer_to_server(
        SweepService(sweeps, driver, announcer, js), server
    )
    analysis_pb2_grpc.add_AnalysisServiceServicer_to_server(AnalysisService(store, sweeps), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [
            SERVICE_NAME,
            SWEEP_SERVICE_NAME,
            ANALYSIS_SERVICE_NAME,
            health.SERVICE_NAME,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    if config.tls_cert_file:
        credentials = grpc.ssl_server_credentials(
            [(Path(config.tls_key_file).read_bytes(), Path(config.tls_cert_file).read_bytes())]
        )
        server.add_secure_port(config.listen, credentials)
    else:
        server.add_insecure_port(config.listen)
    settle_heap()
    await server.start()
    recorder = Recorder(js, store, dispatcher, metrics)
    reconciler = Reconciler(
        js, store, dispatcher, recorder, config.queue.ack_wait_seconds, training=trainers.training
    )
    supervisor = Supervisor(stopping)
    supervisor.start("the event recorder", lambda: recorder.run(stopping))
    supervisor.start("the give-ups", lambda: GiveUps(js, store, dispatcher).run(stopping))
    supervisor.start("the sweep driver", lambda: driver.run(stopping))
    supervisor.start("the reconciler", lambda: reconciler.run(stopping))
    supervisor.start("the trainers' silence", lambda: trainers.run(stopping))
    retention = Retention(store, js, config.retention, sweeps)
    supervisor.start("the retention", lambda: retention.run(stopping))
    if stop_metrics:
        refresher = Refresher(metrics, store, js)
        supervisor.start("the metrics refresher", lambda: refresher.run(stopping))
    for name in ("", SERVICE_NAME, SWEEP_SERVICE_NAME, ANALYSIS_SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "scheduler serving on %s (%s, %s)",
        config.listen,
        "TLS" if config.tls_cert_file else "plaintext",
        f"{len(set(config.tokens.values()))} users with tokens" if config.tokens else "no tokens",
    )

    await until_either(stopping, supervisor.dead)
    code = 1 if supervisor.dead.is_set() else 0
    if code:
        log.critical("scheduler cannot go on (%s): stopping", supervisor.reason)
        stopping.set()
    log.info("scheduler stopping")
    await health_servicer.enter_graceful_shutdown()
    await server.stop(config.grace_seconds)
    await supervisor.stop(config.grace_seconds)
    await _close(nc, store)
    if stop_metrics:
        stop_metrics()
    log.info("scheduler stopped")
    return code


def settle_heap() -> None:
    """Keep Python's collector out of an event's fan-out (RESULTS.md, 2026-12-07 12:05, "the
    collector's pauses"). A full collection walks every object the scheduler holds, startup's
    modules and descriptors included: up to 130 ms at 1,000 watchers, in the middle of an
    event's 1,000 writes. Frozen before serving, startup's objects are never walked again; a
    larger first generation lets a burst's short-lived objects die before a collection sees
    them."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _prepare(
    store: JobStore,
    sweeps: SweepStore,
    js: JetStreamContext,
    config: Config,
    stopping: asyncio.Event,
) -> bool:
    """Indexes and streams, retried while the database or NATS is unreachable."""
    backoff = Backoff(first=0.5, cap=5.0)
    while not stopping.is_set():
        try:
            await store.ensure_indexes()
            await points.migrate(store)
            await sweeps.ensure_indexes()
            await streams.ensure_streams(js, config.queue)
            return True
        except OUTAGES as error:
            log.warning("waiting for the database and NATS: %r", error)
            await backoff.wait(stopping)
    return False


async def _close(nc: Client, store: JobStore) -> None:
    """Drain NATS and close the database, quietly, whatever is down."""
    await streams.close(nc)
    # A stalled database would hold the close (pymongo ends its sessions there) for seconds.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(store.close(), CLOSE_SECONDS)
