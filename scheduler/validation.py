"""Request checks the services share: ids and page sizes, refused with the field and why."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = grpc.aio.ServicerContext

# Job and sweep ids alike: 32 lowercase hex digits.
ID = re.compile(r"[0-9a-f]{32}")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


async def valid_id(value: str, field: str, context: Context) -> str:
    if not ID.fullmatch(value):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"{field}: must be 32 lowercase hex digits"
        )
    return value


async def valid_page_size(requested: int, context: Context) -> int:
    """The page size asked for, DEFAULT_PAGE_SIZE for 0."""
    size = requested or DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"page_size: must be between 1 and {MAX_PAGE_SIZE}, got {requested}",
        )
    return size
