"""Trainer configuration, read and checked once, from TUNER_* environment variables."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tuner.core import env as settings
from tuner.core.hyperparameters import DATASETS
from tuner.core.streams import QueuePolicy

DEVICES = ("auto", "cpu", "cuda")
WARM_DEFAULT = ("mnist",)


def warm_datasets(env: Mapping[str, str]) -> tuple[str, ...]:
    """TUNER_WARM_DATASETS: data sets to load at start, comma-separated; empty or none: none."""
    raw = env.get("TUNER_WARM_DATASETS")
    if raw is None:
        return WARM_DEFAULT
    if raw.strip().lower() in ("", "none"):
        return ()
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if unknown := [name for name in names if name not in DATASETS]:
        raise settings.ConfigError(
            f"TUNER_WARM_DATASETS: must be none or a comma-separated list of "
            f"{', '.join(DATASETS)}, got {', '.join(map(repr, unknown))}"
        )
    return tuple(dict.fromkeys(names))


def default_data_dir(env: Mapping[str, str]) -> Path:
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
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
    nats_ca_file: str = ""
    metrics_port: int = 0  # 0: no metrics served
    warm_datasets: tuple[str, ...] = WARM_DEFAULT  # loaded before the first job is taken

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Raises ConfigError naming the variable that is wrong."""
        e = os.environ if env is None else env
        device = settings.text(e, "TUNER_DEVICE", "auto")
        kind, _, index = device.partition(":")
        if kind not in DEVICES or (index and (kind != "cuda" or not index.isdigit())):
            raise settings.ConfigError(
                f"TUNER_DEVICE: must be auto, cpu, cuda or cuda:N, got {device!r}"
            )
        return cls(
            nats_url=settings.text(e, "TUNER_NATS_URL", "nats://127.0.0.1:4222"),
            data_dir=Path(settings.text(e, "TUNER_DATA_DIR") or default_data_dir(e)),
            device=device,
            name=settings.text(e, "TUNER_TRAINER_NAME", f"{socket.gethostname()}-{os.getpid()}"),
            queue=QueuePolicy.from_env(e),
            progress_interval=settings.number(e, "TUNER_PROGRESS_INTERVAL", 0.2),
            torch_threads=settings.integer(e, "TUNER_TORCH_THREADS", 0, minimum=0),
            nats_ca_file=settings.text(e, "TUNER_NATS_CA_FILE"),
            metrics_port=settings.integer(e, "TUNER_METRICS_PORT", 0, minimum=0, maximum=65535),
            warm_datasets=warm_datasets(e),
        )
