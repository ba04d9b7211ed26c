"""merged(): several streams read as one, every source closed when the reader stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from scheduler.merge import merged


async def test_every_item_of_every_source_arrives() -> None:
    async def count(start: int) -> AsyncIterator[int]:
        for n in range(start, start + 3):
            yield n
            await asyncio.sleep(0)

    assert sorted([n async for n in merged(count(0), count(10))]) == [0, 1, 2, 10, 11, 12]


async def test_a_failing_source_ends_the_stream_with_its_error() -> None:
    async def fails() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        async for _ in merged(fails()):
            pass


async def test_stopping_the_reader_closes_every_source() -> None:
    closed: list[str] = []

    async def endless(name: str) -> AsyncIterator[str]:
        try:
            while True:
                yield name
                await asyncio.sleep(0.01)
        finally:
            closed.append(name)

    stream = merged(endless("a"), endless("b"))
    assert await anext(stream) in {"a", "b"}
    await stream.aclose()
    for _ in range(50):
        if len(closed) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(closed) == ["a", "b"]
