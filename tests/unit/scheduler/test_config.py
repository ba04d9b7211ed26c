"""The scheduler's settings: defaults, and one clear line for each wrong variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.config import Config
from scheduler.retention import RetentionPolicy
from tests.support.processes import run_module
from tuner.core.env import ConfigError
from tuner.core.streams import QueuePolicy

TOKENS = "alice: alice-token-0123456789"


def test_the_defaults() -> None:
    config = Config.from_env({})
    assert config.listen == "127.0.0.1:50051"
    assert config.mongo_uri == "mongodb://127.0.0.1:27017/?directConnection=true"
    assert config.database == "tuner"
    assert config.nats_url == "nats://127.0.0.1:4222"
    assert config.queue == QueuePolicy(ack_wait_seconds=30.0, max_deliver=3, replicas=1)
    assert config.grace_seconds == 5.0
    assert config.max_active_per_user == 100
    assert (config.nats_ca_file, config.tls_cert_file, config.tls_key_file) == ("", "", "")
    assert config.tokens == {}
    assert config.retention == RetentionPolicy(per_user=20, days=30.0, every_seconds=3600.0)


def test_every_setting_is_read() -> None:
    config = Config.from_env(
        {
            "TUNER_LISTEN": "0.0.0.0:6000",
            "TUNER_MONGO_URI": "mongodb://db:27017",
            "TUNER_DB_NAME": "other",
            "TUNER_NATS_URL": "nats://a:4222,nats://b:4222",
            "TUNER_ACK_WAIT_SECONDS": "2.5",
            "TUNER_MAX_DELIVER": "7",
            "TUNER_STREAM_REPLICAS": "3",
            "TUNER_GRACE_SECONDS": "0.5",
            "TUNER_MAX_ACTIVE_PER_USER": "2",
            "TUNER_NATS_CA_FILE": "/ca.pem",
            "TUNER_TLS_CERT_FILE": "/cert.pem",
            "TUNER_TLS_KEY_FILE": "/key.pem",
            "TUNER_TOKENS": TOKENS,
            "TUNER_MODELS_PER_USER": "0",
            "TUNER_MODEL_RETENTION_DAYS": "0.5",
            "TUNER_MODEL_RETENTION_INTERVAL_SECONDS": "60",
            "TUNER_HISTORY_RETENTION_DAYS": "0",
        }
    )
    assert config.listen == "0.0.0.0:6000"
    assert (config.mongo_uri, config.database) == ("mongodb://db:27017", "other")
    assert config.nats_url == "nats://a:4222,nats://b:4222"
    assert config.queue == QueuePolicy(ack_wait_seconds=2.5, max_deliver=7, replicas=3)
    assert (config.grace_seconds, config.max_active_per_user) == (0.5, 2)
    assert config.nats_ca_file == "/ca.pem"
    assert (config.tls_cert_file, config.tls_key_file) == ("/cert.pem", "/key.pem")
    assert config.tokens == {"alice-token-0123456789": "alice"}
    assert config.retention == RetentionPolicy(
        per_user=0, days=0.5, every_seconds=60.0, history_days=0.0
    )


def test_tokens_come_from_a_file_too(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# who may call\n{TOKENS}\nbob: bob-token-0123456789ab\n")
    config = Config.from_env({"TUNER_TOKENS_FILE": str(tokens)})
    assert config.tokens == {"alice-token-0123456789": "alice", "bob-token-0123456789ab": "bob"}


BAD = [
    ("TUNER_ACK_WAIT_SECONDS", "abc", "TUNER_ACK_WAIT_SECONDS: expected a number, got 'abc'"),
    ("TUNER_ACK_WAIT_SECONDS", "0", "TUNER_ACK_WAIT_SECONDS: must be a positive number, got '0'"),
    ("TUNER_ACK_WAIT_SECONDS", "inf", "TUNER_ACK_WAIT_SECONDS: must be a positive number"),
    ("TUNER_MAX_DELIVER", "0", "TUNER_MAX_DELIVER: must be 1 or more, got 0"),
    ("TUNER_MAX_DELIVER", "1.5", "TUNER_MAX_DELIVER: expected a whole number, got '1.5'"),
    ("TUNER_STREAM_REPLICAS", "6", "TUNER_STREAM_REPLICAS: must be between 1 and 5, got 6"),
    ("TUNER_GRACE_SECONDS", "-1", "TUNER_GRACE_SECONDS: must be a positive number, got '-1'"),
    ("TUNER_MAX_ACTIVE_PER_USER", "x", "TUNER_MAX_ACTIVE_PER_USER: expected a whole number"),
    ("TUNER_TOKENS", "alice: short", "TUNER_TOKENS, entry 1: expected 'user: token'"),
    ("TUNER_TOKENS_FILE", "/nonexistent/tokens", "TUNER_TOKENS_FILE: cannot read /nonexistent"),
    ("TUNER_TLS_CERT_FILE", "/cert.pem", "TUNER_TLS_CERT_FILE and TUNER_TLS_KEY_FILE go together"),
    ("TUNER_LISTEN", "0.0.0.0:50051", "TUNER_LISTEN=0.0.0.0:50051 is reachable from other hosts"),
    ("TUNER_MODELS_PER_USER", "-1", "TUNER_MODELS_PER_USER: must be 0 or more, got -1"),
    ("TUNER_MODELS_PER_USER", "many", "TUNER_MODELS_PER_USER: expected a whole number"),
    ("TUNER_MODEL_RETENTION_DAYS", "-2", "TUNER_MODEL_RETENTION_DAYS: must be a number of 0 or"),
    ("TUNER_MODEL_RETENTION_DAYS", "nan", "TUNER_MODEL_RETENTION_DAYS: must be a number of 0 or"),
    (
        "TUNER_MODEL_RETENTION_INTERVAL_SECONDS",
        "0",
        "TUNER_MODEL_RETENTION_INTERVAL_SECONDS: must be a positive number, got '0'",
    ),
    ("TUNER_HISTORY_RETENTION_DAYS", "-1", "TUNER_HISTORY_RETENTION_DAYS: must be a number of 0"),
    (
        "TUNER_HISTORY_RETENTION_DAYS",
        "3",
        "TUNER_HISTORY_RETENTION_DAYS: must be 0 or cover TUNER_EVENTS_MAX_AGE_SECONDS (7 days)",
    ),
]


@pytest.mark.parametrize(
    ("env", "message"), [pytest.param({v: x}, m, id=f"{v}={x}") for v, x, m in BAD]
)
def test_a_bad_variable_is_named_with_its_rule(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env(env)
    assert str(raised.value).startswith(message), str(raised.value)


def test_listening_beyond_loopback_needs_tokens() -> None:
    assert Config.from_env({"TUNER_LISTEN": "[::1]:50051"}).listen == "[::1]:50051"
    assert Config.from_env({"TUNER_LISTEN": "localhost:50051"}).listen == "localhost:50051"
    config = Config.from_env({"TUNER_LISTEN": "0.0.0.0:50051", "TUNER_TOKENS": TOKENS})
    assert config.listen == "0.0.0.0:50051"


LEVELS = "DEBUG, INFO, WARNING, ERROR, CRITICAL"


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        pytest.param(
            "TUNER_MAX_DELIVER",
            "0",
            "scheduler: TUNER_MAX_DELIVER: must be 1 or more, got 0",
            id="TUNER_MAX_DELIVER=0",
        ),
        pytest.param(
            "TUNER_LOG_LEVEL",
            "LOUD",
            f"scheduler: TUNER_LOG_LEVEL: must be one of {LEVELS}, got 'LOUD'",
            id="TUNER_LOG_LEVEL=LOUD",
        ),
        pytest.param(
            "TUNER_METRICS_PORT",
            "70000",
            "scheduler: TUNER_METRICS_PORT: must be between 0 and 65535, got 70000",
            id="TUNER_METRICS_PORT=70000",
        ),
    ],
)
def test_python_m_scheduler_says_what_is_wrong_in_one_line(
    variable: str, value: str, line: str
) -> None:
    """Exit non-zero with one line on stderr, no traceback, before connecting to anything."""
    result = run_module("scheduler", {variable: value})
    assert result.returncode != 0
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""
