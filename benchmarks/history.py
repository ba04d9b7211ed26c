"""Row 9: the API's latency on an empty database and on one holding a long history of jobs.

One scheduler on SecantusDB on disk (--sync-on-commit, as `tuner up` runs it), no trainer.
The same calls are timed on the empty database, then after `--history` finished jobs of one
user (and a sweep for every 100 of them) are stored through the project's own store code
(`JobStore.insert_many` of `new_job` documents given an epoch and a result, `SweepStore.insert`,
`JobStore.rank_all` for the leaderboards), and the calls are timed again.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import bson
from google.protobuf.duration_pb2 import Duration

from benchmarks.cluster import mlp, start_scheduler
from benchmarks.common import Json, ProcessSample, Section, ms, percentile
from store.documents import Document, epoch_doc, new_job, now, result_doc
from store.jobs import JobStore
from store.sweeps import SweepStore, new_sweep
from tuner.client import TunerClient
from tuner.core import states
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.stack import Stack
from tuner.v1 import job_pb2, sweep_pb2

USER = "historian"
CALLS = 40  # of each kind, per database
BATCH = 1000  # jobs a bulk insert
FAILED_EVERY = 50  # one job in 50 of the history FAILED, the rest SUCCEEDED
SWEEP_EVERY = 100
SMALL = 2_000  # jobs: every page of every call full
HISTORY = 100_000  # jobs, by default: loads in about 2 minutes
TARGET = 2.0  # every call at the long history within 2x of the empty database
# History job n has seed HISTORY_SEED + n, far above the seeds the timed rounds submit.
HISTORY_SEED = 100_000_000


def history_job(n: int, epochs: int = 1) -> Document:
    """A finished job as the recorder leaves it: its epochs, and its result or its error."""
    hp = normalized(mlp(HISTORY_SEED + n, epochs=epochs))
    key = canonical_key(hp)
    doc = new_job(job_id(key), key, hp, USER)
    accuracy = 0.9 + (n * 7919 % 1000) / 20_000
    metrics = [
        job_pb2.EpochMetrics(
            epoch=e,
            train_loss=0.3,
            test_loss=0.25,
            test_accuracy=accuracy,
            training_duration=Duration(seconds=1, nanos=100_000_000),
            evaluation_duration=Duration(nanos=50_000_000),
            attempt=1,
        )
        for e in range(1, epochs + 1)
    ]
    t = now()
    doc.update(
        attempts=1,
        trainer="trainer-1",
        history=[epoch_doc(m) for m in metrics],
        start_time=t,
        end_time=t,
        update_time=t,
        dispatch_sequence=n + 1,
    )
    if n % FAILED_EVERY == FAILED_EVERY - 1:
        doc.update(state=states.name(states.FAILED), error="Trainer lost")
    else:
        result = job_pb2.Result(test_accuracy=accuracy, test_loss=0.25, device="cpu")
        result.training_duration.FromMilliseconds(1100 * epochs)
        doc.update(state=states.name(states.SUCCEEDED), result=result_doc(result))
    return doc


async def load(uri: str, database: str, start: int, stop: int) -> Json:
    """Store history jobs start..stop-1 of USER and a sweep for every SWEEP_EVERY of them;
    how long it took."""
    store = JobStore.connect(uri, database)
    sweeps = SweepStore(store.client, database)
    count = stop - start
    started = time.perf_counter()
    try:
        for first in range(start, stop, BATCH):
            docs = [history_job(n) for n in range(first, min(stop, first + BATCH))]
            if await store.insert_many(docs) != len(docs):
                raise RuntimeError("a history job was already stored")
        loaded = time.perf_counter() - started
        spec = sweep_pb2.SweepSpec(name="history", max_trials=SWEEP_EVERY, parallelism=2)
        for n in range(start // SWEEP_EVERY, stop // SWEEP_EVERY):
            doc = new_sweep(f"history-{n:07d}", spec, USER)
            doc["state"] = states.sweep_name(states.SWEEP_SUCCEEDED)
            await sweeps.insert(doc)
        ranking = time.perf_counter()
        await store.rank_all()
        ranked = time.perf_counter() - ranking
    finally:
        await store.close()
    return {"jobs": count, "jobs_per_s": count / loaded, "load_s": loaded, "rank_all_s": ranked}


async def timed(call: Callable[[], Awaitable[object]]) -> list[float]:
    """CALLS timings of `call`, after one untimed call (its code paths and the channel warm)."""
    await call()
    out = []
    for _ in range(CALLS):
        started = time.perf_counter()
        await call()
        out.append(time.perf_counter() - started)
    return out


async def measure(
    client: TunerClient, known: job_pb2.Hyperparameters, seed: int
) -> dict[str, list[float]]:
    """Each call CALLS times; `known` is submitted again and found, and `seed` keeps the new
    submissions of the two rounds apart."""
    known_id = (await client.submit(known)).job.id
    fresh = iter(range(seed, seed + CALLS + 1))  # and one for the warm-up
    tenth = ""
    pages = await client.list(page_size=20)
    for _ in range(9):
        if not pages.next_page_token:
            break
        tenth = pages.next_page_token
        pages = await client.list(page_size=20, page_token=tenth)
    return {
        "SubmitJob, new": await timed(lambda: client.submit(mlp(next(fresh)))),
        "SubmitJob, deduplicated": await timed(lambda: client.submit(known)),
        "FindJob": await timed(lambda: client.find(known)),
        "GetJob": await timed(lambda: client.get(known_id)),
        "ListJobs, first page of 20": await timed(lambda: client.list(page_size=20)),
        "ListJobs, 10th page of 20": await timed(
            lambda: client.list(page_size=20, page_token=tenth)
        ),
        "ListJobs, SUCCEEDED": await timed(lambda: client.list([states.SUCCEEDED], 20)),
        "ListJobs, FAILED (1 in 50)": await timed(lambda: client.list([states.FAILED], 20)),
        "ListJobs, QUEUED or RUNNING": await timed(
            lambda: client.list([states.QUEUED, states.RUNNING], 20)
        ),
        "GetLeaderboard, dataset": await timed(lambda: client.leaderboard(50)),
        "GetLeaderboard, dataset and model": await timed(
            lambda: client.leaderboard(50, job_pb2.DATASET_MNIST, job_pb2.MODEL_MLP)
        ),
        "ListSweeps, first page of 20": await timed(lambda: client.list_sweeps(20)),
        "GetStatus (QUEUED and RUNNING counted to 1,000)": await timed(lambda: client.status()),
    }


async def settled(pids: list[int], timeout: float = 120.0) -> float:
    """Wait until `pids` use under a tenth of a core for a second (the database writes its
    checkpoint after a bulk load); seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = sum(ProcessSample.of(pid).cpu_seconds for pid in pids)
        await asyncio.sleep(1.0)
        if sum(ProcessSample.of(pid).cpu_seconds for pid in pids) - before < 0.1:
            break
    return time.monotonic() - started


def disk_mib(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) / 1024


def document_sizes() -> dict[int, int]:
    """BSON bytes of a SUCCEEDED job's document by its epochs."""
    return {e: len(bson.encode(history_job(0, epochs=e))) for e in (1, 10, 100)}


def row(state_dir: Path, history: int) -> Section:
    """The calls timed on the empty database, at SMALL jobs (every page full) and at
    `history` jobs."""
    stack = Stack(state_dir)
    for name in ("TUNER_NATS_URL", "TUNER_MONGO_URI"):
        stack.env.pop(name, None)
    # The empty round's submissions stay queued (no trainer), as do the long round's.
    stack.env["TUNER_MAX_ACTIVE_PER_USER"] = str(4 * CALLS)
    try:
        stack.start_nats()
        uri = stack.start_mongo()
        address = start_scheduler(stack, "scheduler")
        database = stack.env.get("TUNER_DB_NAME", "tuner")

        pids = [stack.process(name).pid for name in ("secantusdb", "scheduler")]

        async def rounds() -> tuple[dict[str, list[float]], ...]:
            async with TunerClient(address, USER) as client:
                # On the empty database the known job is one of this round's, still queued;
                # then one of the history's, stored SUCCEEDED.
                empty = await measure(client, mlp(1_999_999), 2_000_000)
                await load(uri, database, 0, SMALL)
                await settled(pids)
                stored = normalized(mlp(HISTORY_SEED))
                small = await measure(client, stored, 3_000_000)
                loaded = await load(uri, database, SMALL, history)
                loaded["settled_s"] = await settled(pids)
                full = await measure(client, stored, 4_000_000)
            return empty, small, loaded, full

        empty, small, loaded, full = asyncio.run(rounds())
        size = disk_mib(state_dir / "db")
    finally:
        stack.stop()
    return section(empty, small, full, loaded, size, history)


def section(
    empty: dict[str, list[float]],
    small: dict[str, list[float]],
    full: dict[str, list[float]],
    loaded: Json,
    size_mib: float,
    history: int,
) -> Section:
    jobs = f"{history:,}"
    out = Section(
        f"Row 9: API latency on an empty database, at {SMALL:,} and at {jobs} jobs of one user",
        [
            "call",
            "empty p50",
            f"{SMALL:,} p50",
            f"{jobs} p50",
            f"{jobs} p99",
            f"{jobs} / empty",
            f"{jobs} / {SMALL:,}",
            f"target <= {TARGET:g}x empty",
        ],
    )
    for name in empty:
        a, s, b = (percentile(v[name], 50) for v in (empty, small, full))
        out.rows.append(
            [
                name,
                ms(a),
                ms(s),
                ms(b),
                ms(percentile(full[name], 99)),
                f"{b / a:.2f}x",
                f"{b / s:.2f}x",
                "met" if b <= TARGET * a else "MISSED",
            ]
        )
    sizes = document_sizes()
    out.notes += [
        f"{CALLS} calls of each, one at a time; SecantusDB on disk with --sync-on-commit; "
        f"1 in {FAILED_EVERY} of the history FAILED, the rest SUCCEEDED, a sweep every "
        f"{SWEEP_EVERY} jobs",
        f"bulk load: {history - SMALL:,} jobs in {loaded['load_s']:.1f} s "
        f"({loaded['jobs_per_s']:,.0f} jobs/s, JobStore.insert_many by {BATCH}), leaderboards "
        f"ranked from all {history:,} in {loaded['rank_all_s']:.1f} s; database on disk "
        f"{size_mib:,.0f} MiB "
        f"({size_mib * 1024 * 1024 / max(1, history):,.0f} B a job); then "
        f"{loaded['settled_s']:.0f} s until the database and the scheduler were idle",
        "a SUCCEEDED job's document: "
        + ", ".join(f"{e} epoch{'s' if e > 1 else ''} {b:,} B" for e, b in sizes.items()),
    ]
    out.data = {
        "history": history,
        "load": loaded,
        "disk_mib": size_mib,
        "document_bytes": sizes,
        "empty": {k: sorted(v) for k, v in empty.items()},
        "small": {k: sorted(v) for k, v in small.items()},
        "full": {k: sorted(v) for k, v in full.items()},
    }
    return out
