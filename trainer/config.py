"""Trainer configuration, read once from TUNER_* environment variables."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from tuner.streams import QueuePolicy


def default_data_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tuner" / "data"


@dataclass(frozen=True)
class Config:
    nats_url: str
    data_dir: Path
    device: str
    name: str
    queue: QueuePolicy
    progress_interval: float
    torch_threads: int  # 0: torch's default, every core

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        e = os.environ if env is None else env
        return cls(
            nats_url=e.get("TUNER_NATS_URL", "nats://127.0.0.1:4222"),
            data_dir=Path(e.get("TUNER_DATA_DIR") or default_data_dir()),
            device=e.get("TUNER_DEVICE", "auto"),
            name=e.get("TUNER_TRAINER_NAME") or f"{socket.gethostname()}-{os.getpid()}",
            queue=QueuePolicy(
                ack_wait_seconds=float(e.get("TUNER_ACK_WAIT_SECONDS", "30")),
                max_deliver=int(e.get("TUNER_MAX_DELIVER", "3")),
                replicas=int(e.get("TUNER_STREAM_REPLICAS", "1")),
            ),
            progress_interval=float(e.get("TUNER_PROGRESS_INTERVAL", "0.2")),
            torch_threads=int(e.get("TUNER_TORCH_THREADS", "0")),
        )
