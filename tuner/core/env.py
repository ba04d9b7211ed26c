"""Reading settings from the environment, once, at a service's start: one error type, one line."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping


class ConfigError(ValueError):
    """A setting is wrong; the message names the variable and the rule it broke."""


def text(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def number(env: Mapping[str, str], name: str, default: float, *, positive: bool = True) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        rule = "a positive number" if positive else "a number of 0 or more"
        raise ConfigError(f"{name}: must be {rule}, got {raw!r}")
    return value


def integer(
    env: Mapping[str, str], name: str, default: int, *, minimum: int = 1, maximum: int | None = None
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and {maximum}" if maximum is not None else " or more"
        rule = f"between {minimum}{upper}" if maximum is not None else f"{minimum}{upper}"
        raise ConfigError(f"{name}: must be {rule}, got {value}")
    return value


def choice(env: Mapping[str, str], name: str, default: str, choices: Collection[str]) -> str:
    value = text(env, name, default)
    if value not in choices:
        raise ConfigError(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(env: Mapping[str, str]) -> int:
    """TUNER_LOG_LEVEL as a logging level (default INFO)."""
    name = text(env, "TUNER_LOG_LEVEL", "INFO").upper()
    if name not in LOG_LEVELS:
        raise ConfigError(f"TUNER_LOG_LEVEL: must be one of {', '.join(LOG_LEVELS)}, got {name!r}")
    return logging.getLevelName(name)  # type: ignore[no-any-return]


LOG_FORMATS = ("text", "json")


def log_format(env: Mapping[str, str]) -> str:
    """TUNER_LOG_FORMAT: `text` (default) or `json`, one object a line."""
    return choice(env, "TUNER_LOG_FORMAT", "text", LOG_FORMATS)
