"""Scheduler configuration, read once from TUNER_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tuner.streams import QueuePolicy


@dataclass(frozen=True)
class Config:
    listen: str
    mongo_uri: str
    database: str
    nats_url: str
    queue: QueuePolicy
    grace_seconds: float

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        e = os.environ if env is None else env
        return cls(
            listen=e.get("TUNER_LISTEN", "127.0.0.1:50051"),
            mongo_uri=e.get("TUNER_MONGO_URI", "mongodb://127.0.0.1:27017/?directConnection=true"),
            database=e.get("TUNER_DB_NAME", "tuner"),
            nats_url=e.get("TUNER_NATS_URL", "nats://127.0.0.1:4222"),
            queue=QueuePolicy(
                ack_wait_seconds=float(e.get("TUNER_ACK_WAIT_SECONDS", "30")),
                max_deliver=int(e.get("TUNER_MAX_DELIVER", "3")),
            ),
            grace_seconds=float(e.get("TUNER_GRACE_SECONDS", "5")),
        )
