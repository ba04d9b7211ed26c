"""Scheduler configuration, read and checked once, from TUNER_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from scheduler.auth import is_loopback, load_tokens
from scheduler.retention import RetentionPolicy
from tuner.core import env as settings
from tuner.core.env import ConfigError
from tuner.core.streams import QueuePolicy


@dataclass(frozen=True)
class Config:
    listen: str
    mongo_uri: str
    database: str
    nats_url: str
    queue: QueuePolicy
    grace_seconds: float
    max_active_per_user: int
    nats_ca_file: str = ""
    metrics_port: int = 0  # 0: no metrics served
    tls_cert_file: str = ""
    tls_key_file: str = ""
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    # token -> user id; empty means callers name themselves, allowed on loopback only
    tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Raises ConfigError naming the variable that is wrong."""
        e = os.environ if env is None else env
        config = cls(
            listen=settings.text(e, "TUNER_LISTEN", "127.0.0.1:50051"),
            mongo_uri=settings.text(
                e, "TUNER_MONGO_URI", "mongodb://127.0.0.1:27017/?directConnection=true"
            ),
            database=settings.text(e, "TUNER_DB_NAME", "tuner"),
            nats_url=settings.text(e, "TUNER_NATS_URL", "nats://127.0.0.1:4222"),
            queue=QueuePolicy.from_env(e),
            grace_seconds=settings.number(e, "TUNER_GRACE_SECONDS", 5.0),
            max_active_per_user=settings.integer(e, "TUNER_MAX_ACTIVE_PER_USER", 100),
            nats_ca_file=settings.text(e, "TUNER_NATS_CA_FILE"),
            metrics_port=settings.integer(e, "TUNER_METRICS_PORT", 0, minimum=0, maximum=65535),
            tls_cert_file=settings.text(e, "TUNER_TLS_CERT_FILE"),
            tls_key_file=settings.text(e, "TUNER_TLS_KEY_FILE"),
            retention=RetentionPolicy.from_env(e),
            tokens=load_tokens(e),
        )
        if bool(config.tls_cert_file) != bool(config.tls_key_file):
            raise ConfigError("TUNER_TLS_CERT_FILE and TUNER_TLS_KEY_FILE go together")
        history_seconds = config.retention.history_days * 86400
        if 0 < history_seconds < config.queue.events_max_age_seconds:
            raise ConfigError(
                "TUNER_HISTORY_RETENTION_DAYS: must be 0 or cover TUNER_EVENTS_MAX_AGE_SECONDS "
                f"({config.queue.events_max_age_seconds / 86400:g} days): a job deleted "
                "sooner and submitted again would meet its old run's events"
            )
        if not config.tokens and not is_loopback(config.listen):
            raise ConfigError(
                f"TUNER_LISTEN={config.listen} is reachable from other hosts: "
                "set TUNER_TOKENS_FILE or TUNER_TOKENS, or listen on 127.0.0.1"
            )
        return config
