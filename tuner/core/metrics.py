"""Serving a process's Prometheus metrics over HTTP, on the port TUNER_METRICS_PORT names."""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from tuner.core.env import ConfigError

log = logging.getLogger(__name__)

PORT_VARIABLE = "TUNER_METRICS_PORT"


def new_registry() -> CollectorRegistry:
    """A registry of this process's own, with the standard process and platform metrics."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def serve(registry: CollectorRegistry, port: int) -> Callable[[], None]:
    """Serve `registry` at http://0.0.0.0:port/metrics from a thread; returns how to stop.

    A port that cannot be bound (in use, privileged) raises ConfigError naming the variable.
    """
    try:
        server, thread = start_http_server(port, registry=registry)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(
            f"{PORT_VARIABLE}: cannot serve metrics on port {port}: {reason}"
        ) from None
    log.info("metrics on http://0.0.0.0:%d/metrics", port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=1)

    return stop
