"""Wiring: MongoDB, NATS, the gRPC server, and one shutdown sequence."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from scheduler.advisories import GiveUps
from scheduler.auth import AuthInterceptor
from scheduler.config import Config
from scheduler.dispatch import Dispatcher
from scheduler.jobs import Jobs
from scheduler.reconciler import reconcile
from scheduler.recorder import Recorder
from scheduler.service import TunerService
from scheduler.sweeps import SweepDriver
from store.jobs import JobStore
from store.sweeps import SweepStore
from tuner.core import streams
from tuner.v1 import tuner_service_pb2, tuner_service_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = tuner_service_pb2.DESCRIPTOR.services_by_name["TunerService"].full_name
MAX_MESSAGE_BYTES = 1024 * 1024


async def main(config: Config) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)

    store = JobStore.connect(config.mongo_uri, config.database)
    await store.ensure_indexes()
    nc = await streams.connect(config.nats_url, name="tuner-scheduler", ca_file=config.nats_ca_file)
    js = nc.jetstream()
    await streams.ensure_streams(js, config.queue)
    dispatcher = Dispatcher(nc, js, store)
    jobs = Jobs(store, dispatcher, config.max_active_per_user)
    sweeps = SweepStore(store.client, config.database)
    await sweeps.ensure_indexes()
    driver = SweepDriver(sweeps, store, jobs, name=f"{socket.gethostname()}-{os.getpid()}")

    server = grpc.aio.server(
        interceptors=[AuthInterceptor(config.tokens)],
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
    )
    tuner_service_pb2_grpc.add_TunerServiceServicer_to_server(
        TunerService(store, jobs, js, sweeps, driver), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    if config.tls_cert_file:
        credentials = grpc.ssl_server_credentials(
            [(Path(config.tls_key_file).read_bytes(), Path(config.tls_cert_file).read_bytes())]
        )
        server.add_secure_port(config.listen, credentials)
    else:
        server.add_insecure_port(config.listen)
    await server.start()
    tasks = [
        asyncio.create_task(Recorder(js, store, dispatcher).run(stopping)),
        asyncio.create_task(GiveUps(js, store, dispatcher).run(stopping)),
        asyncio.create_task(driver.run(stopping)),
        asyncio.create_task(reconcile(store, dispatcher, stopping)),
    ]
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "scheduler serving on %s (%s, %s)",
        config.listen,
        "TLS" if config.tls_cert_file else "plaintext",
        f"{len(set(config.tokens.values()))} users with tokens" if config.tokens else "no tokens",
    )

    await stopping.wait()
    log.info("scheduler stopping")
    await health_servicer.enter_graceful_shutdown()
    await server.stop(config.grace_seconds)
    await asyncio.gather(*tasks, return_exceptions=True)
    await nc.drain()
    await store.close()
    log.info("scheduler stopped")
