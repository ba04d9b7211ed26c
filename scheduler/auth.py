"""Who is calling: bearer tokens mapped to user ids, checked in one server interceptor."""

from __future__ import annotations

import contextvars
import functools
import hmac
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from scheduler.calls import Context, Handler, wrap
from tuner.core import metadata
from tuner.core.addresses import is_loopback as is_loopback  # scheduler.config's
from tuner.core.env import ConfigError

USER = re.compile(r"[\w.@+-]{1,128}")
TOKEN_LINE = re.compile(r"\s*([\w.@+-]{1,128})\s*:\s*(\S{16,})\s*")
PROTECTED_PREFIX = "/tuner.v1."  # health checks and reflection stay open, for probes

current_user: contextvars.ContextVar[str] = contextvars.ContextVar("current_user")


def parse_tokens(text: str, source: str) -> dict[str, str]:
    """'user: token' per line (or comma-separated); tokens of 16+ characters. token -> user."""
    tokens: dict[str, str] = {}
    for number, line in enumerate(re.split(r"[\n,]", text), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = TOKEN_LINE.fullmatch(line)
        if match is None:
            raise ConfigError(f"{source}, entry {number}: expected 'user: token' (16+ characters)")
        user, token = match.groups()
        tokens[token] = user
    return tokens


def load_tokens(env: Mapping[str, str]) -> dict[str, str]:
    tokens: dict[str, str] = {}
    if path := env.get("TUNER_TOKENS_FILE"):
        try:
            tokens.update(parse_tokens(Path(path).read_text(), path))
        except OSError as error:
            raise ConfigError(f"TUNER_TOKENS_FILE: cannot read {path}: {error.strerror}") from error
    if text := env.get("TUNER_TOKENS"):
        tokens.update(parse_tokens(text, "TUNER_TOKENS"))
    return tokens


def _metadata(details: grpc.HandlerCallDetails) -> dict[str, str]:
    return {key: str(value) for key, value in details.invocation_metadata or ()}


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """With tokens: `authorization: Bearer TOKEN` names the user. Without (loopback only):
    the caller names itself in `tuner-user` metadata."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = dict(tokens)

    def identify(self, headers: Mapping[str, str]) -> str | Refusal:
        if not self._tokens:
            user = headers.get(metadata.USER, "anonymous")
            if not USER.fullmatch(user):
                return Refusal(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"{metadata.USER}: must be 1-128 letters, digits or . @ + - _",
                )
            return user
        scheme, _, token = headers.get(metadata.AUTHORIZATION, "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return Refusal(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing bearer token: set TUNER_TOKEN or pass --token",
            )
        for known, user in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        return Refusal(grpc.StatusCode.UNAUTHENTICATED, "unknown token")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(PROTECTED_PREFIX):
            return handler
        return wrap(handler, functools.partial(_as, self.identify(_metadata(details))))


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    reason: str


@asynccontextmanager
async def _as(caller: str | Refusal, context: Context) -> AsyncIterator[None]:
    """The call, run as the caller, or refused."""
    if isinstance(caller, Refusal):
        await context.abort(caller.code, caller.reason)
    current_user.set(caller)
    yield
