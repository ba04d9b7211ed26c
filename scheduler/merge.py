"""Several async streams read as one: what each yields, as it comes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

T = TypeVar("T")


class _End:
    """A source ended (or failed with `error`)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def merged(*sources: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Every source's items as they come, until all end or one fails (its error is raised).

    When the reader stops (or is cancelled) every source is stopped and closed.
    """
    # One slot: a source waits for the reader, so a slow reader slows its sources.
    queue: asyncio.Queue[T | _End] = asyncio.Queue(1)

    async def pump(source: AsyncIterator[T]) -> None:
        try:
            async for item in source:
                await queue.put(item)
        except Exception as error:
            await queue.put(_End(error))
        else:
            await queue.put(_End())

    tasks = [asyncio.create_task(pump(source)) for source in sources]
    try:
        running = len(tasks)
        while running:
            item = await queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                running -= 1
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for source in sources:
            close = getattr(source, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
