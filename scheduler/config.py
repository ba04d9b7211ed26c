"""Scheduler configuration, read once from TUNER_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from scheduler.auth import ConfigError, is_loopback, load_tokens
from tuner.streams import QueuePolicy


def number(env: Mapping[str, str], name: str, default: str, kind: type[float] = float) -> float:
    try:
        value = kind(env.get(name, default))
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {env[name]!r}") from None
    if value <= 0:
        raise ConfigError(f"{name}: must be positive, got {value}")
    return value


@dataclass(frozen=True)
class Config:
    listen: str
    mongo_uri: str
    database: str
    nats_url: str
    queue: QueuePolicy
    grace_seconds: float
    max_active_per_user: int
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # token -> user id; empty means callers name themselves, allowed on loopback only
    tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Raises ConfigError naming the variable that is wrong."""
        e = os.environ if env is None else env
        config = cls(
            listen=e.get("TUNER_LISTEN", "127.0.0.1:50051"),
            mongo_uri=e.get("TUNER_MONGO_URI", "mongodb://127.0.0.1:27017/?directConnection=true"),
            database=e.get("TUNER_DB_NAME", "tuner"),
            nats_url=e.get("TUNER_NATS_URL", "nats://127.0.0.1:4222"),
            queue=QueuePolicy(
                ack_wait_seconds=number(e, "TUNER_ACK_WAIT_SECONDS", "30"),
                max_deliver=int(number(e, "TUNER_MAX_DELIVER", "3", int)),
                replicas=int(number(e, "TUNER_STREAM_REPLICAS", "1", int)),
            ),
            grace_seconds=number(e, "TUNER_GRACE_SECONDS", "5"),
            max_active_per_user=int(number(e, "TUNER_MAX_ACTIVE_PER_USER", "100", int)),
            tls_cert_file=e.get("TUNER_TLS_CERT_FILE", ""),
            tls_key_file=e.get("TUNER_TLS_KEY_FILE", ""),
            tokens=load_tokens(e),
        )
        if bool(config.tls_cert_file) != bool(config.tls_key_file):
            raise ConfigError("TUNER_TLS_CERT_FILE and TUNER_TLS_KEY_FILE go together")
        if not config.tokens and not is_loopback(config.listen):
            raise ConfigError(
                f"TUNER_LISTEN={config.listen} is reachable from other hosts: "
                "set TUNER_TOKENS_FILE or TUNER_TOKENS, or listen on 127.0.0.1"
            )
        return config
