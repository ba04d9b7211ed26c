"""Reading settings: each parser's default, its rule, and the one error naming the variable."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import pytest

from tuner.core import env
from tuner.core.env import ConfigError


def refusal(read: Callable[[], object]) -> str:
    """The message of the ConfigError that `read` raises."""
    with pytest.raises(ConfigError) as raised:
        read()
    return str(raised.value)


def test_blank_is_the_default_and_text_is_stripped() -> None:
    values = {"A": "  ", "B": " x "}
    assert env.text(values, "A", "d") == "d"
    assert env.text(values, "B", "d") == "x"
    assert env.number(values, "A", 1.5) == 1.5
    assert env.integer(values, "A", 3) == 3
    assert env.number({"N": " 2.5 "}, "N", 1.0) == 2.5
    assert env.integer({"N": " 7 "}, "N", 1) == 7


def test_number_rules() -> None:
    assert env.number({"N": "0"}, "N", 1.0, positive=False) == 0.0
    for raw in ("0", "-1", "nan", "inf"):
        message = refusal(functools.partial(env.number, {"N": raw}, "N", 1.0))
        assert message == f"N: must be a positive number, got '{raw}'"
    assert refusal(lambda: env.number({"N": "-1"}, "N", 1.0, positive=False)) == (
        "N: must be a number of 0 or more, got '-1'"
    )
    assert refusal(lambda: env.number({"N": "abc"}, "N", 1.0)) == "N: expected a number, got 'abc'"


def test_integer_rules() -> None:
    assert env.integer({"N": "5"}, "N", 1, maximum=5) == 5
    assert refusal(lambda: env.integer({"N": "6"}, "N", 1, maximum=5)) == (
        "N: must be between 1 and 5, got 6"
    )
    assert refusal(lambda: env.integer({"N": "-1"}, "N", 1, minimum=0)) == (
        "N: must be 0 or more, got -1"
    )
    assert refusal(lambda: env.integer({"N": "2.0"}, "N", 1)) == (
        "N: expected a whole number, got '2.0'"
    )


def test_choice() -> None:
    assert env.choice({}, "C", "a", ("a", "b")) == "a"
    assert env.choice({"C": "b"}, "C", "a", ("a", "b")) == "b"
    assert refusal(lambda: env.choice({"C": "z"}, "C", "a", ("a", "b"))) == (
        "C: must be one of a, b, got 'z'"
    )


def test_log_level() -> None:
    assert env.log_level({}) == logging.INFO
    assert env.log_level({"TUNER_LOG_LEVEL": "debug"}) == logging.DEBUG
    assert env.log_level({"TUNER_LOG_LEVEL": " warning "}) == logging.WARNING
    assert refusal(lambda: env.log_level({"TUNER_LOG_LEVEL": "LOUD"})) == (
        "TUNER_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'"
    )


def test_log_format() -> None:
    assert env.log_format({}) == "text"
    assert env.log_format({"TUNER_LOG_FORMAT": " json "}) == "json"
    assert refusal(lambda: env.log_format({"TUNER_LOG_FORMAT": "xml"})) == (
        "TUNER_LOG_FORMAT: must be one of text, json, got 'xml'"
    )


def test_a_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
