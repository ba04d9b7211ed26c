"""The trainer's settings: defaults, and one clear line for each wrong variable."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.support.processes import run_module
from trainer.config import Config
from tuner.core.env import ConfigError
from tuner.core.streams import QueuePolicy


def test_the_defaults() -> None:
    config = Config.from_env({"XDG_CACHE_HOME": "/cache"})
    assert config.nats_url == "nats://127.0.0.1:4222"
    assert config.data_dir == Path("/cache/tuner/data")
    assert config.device == "auto"
    assert config.name == f"{socket.gethostname()}-{os.getpid()}"
    assert config.queue == QueuePolicy()
    assert config.progress_interval == 0.2
    assert config.torch_threads == 0
    assert config.nats_ca_file == ""
    assert config.warm_datasets == ("mnist",)
    assert Config.from_env({}).data_dir == Path.home() / ".cache" / "tuner" / "data"


def test_every_setting_is_read() -> None:
    config = Config.from_env(
        {
            "TUNER_NATS_URL": "tls://n1:4222",
            "TUNER_DATA_DIR": "/data",
            "TUNER_DEVICE": "cuda:1",
            "TUNER_TRAINER_NAME": "t7",
            "TUNER_ACK_WAIT_SECONDS": "4",
            "TUNER_MAX_DELIVER": "5",
            "TUNER_PROGRESS_INTERVAL": "1.5",
            "TUNER_TORCH_THREADS": "2",
            "TUNER_NATS_CA_FILE": "/ca.pem",
            "TUNER_WARM_DATASETS": "fashion-mnist, mnist",
        }
    )
    assert (config.nats_url, config.nats_ca_file) == ("tls://n1:4222", "/ca.pem")
    assert config.data_dir == Path("/data")
    assert (config.device, config.name) == ("cuda:1", "t7")
    assert config.queue == QueuePolicy(ack_wait_seconds=4.0, max_deliver=5)
    assert (config.progress_interval, config.torch_threads) == (1.5, 2)
    assert config.warm_datasets == ("fashion-mnist", "mnist")


@pytest.mark.parametrize(
    ("value", "warm"),
    [
        ("mnist", ("mnist",)),
        ("mnist,fashion-mnist", ("mnist", "fashion-mnist")),
        (" fashion-mnist , mnist ,", ("fashion-mnist", "mnist")),
        ("mnist,mnist", ("mnist",)),
        ("none", ()),
        ("None", ()),
        ("", ()),
        ("  ", ()),
    ],
)
def test_the_warm_datasets_are_a_list_or_none(value: str, warm: tuple[str, ...]) -> None:
    assert Config.from_env({"TUNER_WARM_DATASETS": value}).warm_datasets == warm


BAD = [
    ("TUNER_TORCH_THREADS", "-1", "TUNER_TORCH_THREADS: must be 0 or more, got -1"),
    ("TUNER_TORCH_THREADS", "two", "TUNER_TORCH_THREADS: expected a whole number, got 'two'"),
    ("TUNER_DEVICE", "tpu", "TUNER_DEVICE: must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    ("TUNER_PROGRESS_INTERVAL", "soon", "TUNER_PROGRESS_INTERVAL: expected a number, got 'soon'"),
    ("TUNER_PROGRESS_INTERVAL", "0", "TUNER_PROGRESS_INTERVAL: must be a positive number"),
    ("TUNER_ACK_WAIT_SECONDS", "abc", "TUNER_ACK_WAIT_SECONDS: expected a number, got 'abc'"),
    ("TUNER_MAX_DELIVER", "0", "TUNER_MAX_DELIVER: must be 1 or more, got 0"),
    (
        "TUNER_WARM_DATASETS",
        "mnist,cifar10",
        "TUNER_WARM_DATASETS: must be none or a comma-separated list of mnist, fashion-mnist, "
        "got 'cifar10'",
    ),
]


@pytest.mark.parametrize(
    ("env", "message"), [pytest.param({v: x}, m, id=f"{v}={x}") for v, x, m in BAD]
)
def test_a_bad_variable_is_named_with_its_rule(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env(env)
    assert str(raised.value).startswith(message), str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        pytest.param(
            "TUNER_DEVICE",
            "tpu",
            "trainer: TUNER_DEVICE: must be auto, cpu, cuda or cuda:N, got 'tpu'",
            id="TUNER_DEVICE=tpu",
        ),
        pytest.param(
            "TUNER_LOG_LEVEL",
            "LOUD",
            "trainer: TUNER_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
            "got 'LOUD'",
            id="TUNER_LOG_LEVEL=LOUD",
        ),
        pytest.param(
            "TUNER_WARM_DATASETS",
            "emnist",
            "trainer: TUNER_WARM_DATASETS: must be none or a comma-separated list of mnist, "
            "fashion-mnist, got 'emnist'",
            id="TUNER_WARM_DATASETS=emnist",
        ),
        pytest.param(
            "TUNER_METRICS_PORT",
            "70000",
            "trainer: TUNER_METRICS_PORT: must be between 0 and 65535, got 70000",
            id="TUNER_METRICS_PORT=70000",
        ),
    ],
)
def test_python_m_trainer_says_what_is_wrong_in_one_line(
    variable: str, value: str, line: str
) -> None:
    """Exit non-zero with one line on stderr, no traceback, before connecting to anything."""
    result = run_module("trainer", {variable: value})
    assert result.returncode != 0
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""
