"""Row 10: a job write's cost on SecantusDB as writes add up, with and without retryable writes.

pymongo makes every write retryable by default: it sends a session and a transaction number,
and the server keeps its reply, to replay should the driver retry. SecantusDB keeps those
replies for 30 minutes, walks them all on every write and, past 10,000, sorts them on every
write. The row makes the same stream of `JobStore.set_dispatched` writes (one the scheduler
makes for every job) to two SecantusDB servers on disk (as `tuner up` runs it), one through
pymongo's default and one through the embedded stack's URI (retryWrites=false, tuner/stack.py),
in alternating blocks so that both see the machine alike; each block's server CPU and latency
per write.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchmarks.cluster import mlp
from benchmarks.common import Json, ProcessSample, Section, ms, percentile, ratio
from store.documents import new_job
from store.jobs import JobStore
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.stack import NOT_RETRYABLE, Stack

WRITES = 11_000  # past the 10,000 replies SecantusDB keeps before it sorts them
BLOCK = 1_000
JOBS = 100  # written in turn
WAYS = {"retryable (pymongo's default)": True, "not retryable (the stack's URI)": False}


class Server:
    """A SecantusDB of its own, its jobs, and a store connected the one way."""

    def __init__(self, state: Path, retryable: bool) -> None:
        self.stack = Stack(state)
        uri = self.stack.start_mongo()
        if NOT_RETRYABLE not in uri:
            raise RuntimeError(f"the stack's URI {uri} no longer turns retryable writes off")
        self.store = JobStore.connect(uri.replace(NOT_RETRYABLE, "") if retryable else uri, "bench")
        self.pid = self.stack.process("secantusdb").pid
        self.ids: list[str] = []
        self.written = 0

    async def prepare(self) -> None:
        await self.store.ensure_indexes()
        docs = []
        for n in range(JOBS):
            hp = normalized(mlp(10_000_000 + n))
            key = canonical_key(hp)
            docs.append(new_job(job_id(key), key, hp, "writer"))
        await self.store.insert_many(docs)
        self.ids = [d["_id"] for d in docs]

    async def block(self) -> Json:
        """BLOCK more writes: the server's CPU per write, and their latencies."""
        before = ProcessSample.of(self.pid).cpu_seconds
        latencies = []
        for _ in range(BLOCK):
            self.written += 1
            started = time.perf_counter()
            await self.store.set_dispatched(self.ids[self.written % JOBS], 1, self.written)
            latencies.append(time.perf_counter() - started)
        cpu = ProcessSample.of(self.pid).cpu_seconds - before
        return {
            "written": self.written,
            "cpu_per_write_s": cpu / BLOCK,
            "p50_s": percentile(latencies, 50),
            "p99_s": percentile(latencies, 99),
        }

    async def close(self) -> None:
        await self.store.close()
        self.stack.stop()


def run(state: Path) -> Section:
    async def blocks() -> dict[str, list[Json]]:
        servers: dict[str, Server] = {}
        try:
            for i, (way, retryable) in enumerate(WAYS.items()):
                servers[way] = Server(state / f"db-{i}", retryable)
            for server in servers.values():
                await server.prepare()
            measured: dict[str, list[Json]] = {way: [] for way in servers}
            for _ in range(WRITES // BLOCK):
                for way, server in servers.items():
                    measured[way].append(await server.block())
            return measured
        finally:
            for server in servers.values():
                await server.close()

    measured = asyncio.run(blocks())
    on, off = (measured[way] for way in WAYS)
    section = Section(
        "Row 10: a job write (JobStore.set_dispatched) on SecantusDB as writes add up: "
        "retryable (pymongo's default) against not retryable (the embedded stack's URI)",
        ["writes so far", "retryable: server CPU / write", "p50", "p99",
         "not retryable: server CPU / write", "p50", "p99", "CPU ratio"],
    )  # fmt: skip
    for a, b in zip(on, off, strict=True):
        section.rows.append(
            [
                f"{a['written']:,}",
                ms(a["cpu_per_write_s"]),
                ms(a["p50_s"]),
                ms(a["p99_s"]),
                ms(b["cpu_per_write_s"]),
                ms(b["p50_s"]),
                ms(b["p99_s"]),
                ratio(a["cpu_per_write_s"], b["cpu_per_write_s"]),
            ]
        )
    section.notes += [
        f"each row: the last {BLOCK:,} writes to each server, the two servers' blocks "
        f"alternating; {JOBS} jobs written in turn; SecantusDB on disk with --sync-on-commit",
        "SecantusDB keeps a retryable write's reply 30 minutes and at most 10,000 of them; "
        "a deployment making 6 writes a second reaches that in half an hour",
    ]
    section.data = {"writes": measured}
    return section
