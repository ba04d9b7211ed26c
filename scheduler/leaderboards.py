"""The leaderboards GetLeaderboard serves, read again only once a board changed.

A board is read far more often than it changes: once it is full, nearly every success does not
rank and writes nothing. So a call reads the board's token (one small document), which
`JobStore.rank` sets anew after each change of the board, by whichever scheduler made it, and
reads the board itself only when the token is not the one its copy was read under. The token is
read before the board, so a change made meanwhile sends the next call to read again.

A copy older than FRESH_SECONDS is read again whatever its token: the longest a board can show
stale, after a scheduler died between changing a board and setting its token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bson import ObjectId

from store.documents import job_from
from store.jobs import LEADERBOARD_SIZE, JobStore, board_of
from tuner.v1 import job_pb2

FRESH_SECONDS = 30.0


@dataclass(frozen=True)
class _Copy:
    token: ObjectId | None
    read_at: float
    jobs: list[job_pb2.Job]


class Leaderboards:
    def __init__(self, store: JobStore, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._copies: dict[str, _Copy] = {}

    async def top(self, limit: int, dataset: str, model: str = "") -> list[job_pb2.Job]:
        """The best `limit` (at most LEADERBOARD_SIZE) jobs of `dataset`, of every model or
        only of `model`."""
        board = board_of(dataset, model)
        token = await self._store.board_token(board)
        copy = self._copies.get(board)
        if copy is None or copy.token != token or self._clock() - copy.read_at > FRESH_SECONDS:
            read_at = self._clock()
            docs = await self._store.top(LEADERBOARD_SIZE, dataset, model)
            copy = _Copy(token, read_at, [job_from(d) for d in docs])
            self._copies[board] = copy
        return copy.jobs[:limit]
