"""Row 3: submit latency against a bare insert, trainer->watcher latency, and watcher fan-out."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import grpc
import nats
from nats.js.api import StorageType, StreamConfig
from pymongo import MongoClient, WriteConcern

from benchmarks.cluster import (
    USER,
    BenchStack,
    Watched,
    mlp,
    seconds,
    trainer_latencies,
    watch,
)
from benchmarks.common import Json, ProcessSample, Section, ms, percentile
from store import pages
from store.documents import new_job, result_doc
from store.jobs import JobStore
from tuner.client import TunerClient
from tuner.core import states, streams
from tuner.core.hyperparameters import canonical_key, job_id, normalized
from tuner.core.states import RUNNING, SUCCEEDED
from tuner.v1 import job_pb2

SUBMITS = 200
RANKED = 60  # jobs taken through RUNNING and SUCCEEDED onto the leaderboard (it keeps 50)
PER_USER = 50  # below the scheduler's default cap on a user's active jobs (100)
WATCHERS_PER_CHANNEL = 100
FANOUT_EPOCHS = 4
LATENCY_EPOCHS = 12  # the one-watcher job: ~100 progress events for its p99
FANOUT_TIMEOUT = 180.0  # seconds for one fan-out job to reach every watcher
TARGET_P99 = 0.020


def stats(values: list[float]) -> Json:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values, default=float("nan")),
    }


def latency_row(name: str, values: list[float], reference: str = "") -> list[str]:
    s = stats(values)
    return [name, str(s["n"]), ms(s["p50"]), ms(s["p99"]), ms(s["max"]), reference]


async def _timed(call: Awaitable[object]) -> float:
    started = time.perf_counter()
    await call
    return time.perf_counter() - started


def bare_inserts(uri: str, count: int, journaled: bool) -> list[float]:
    """pymongo insert_one of a real job document into the same server, one at a time."""
    client: MongoClient[Json] = MongoClient(uri)
    try:
        concern = WriteConcern(j=True) if journaled else WriteConcern()
        collection = client.get_database("bench_bare", write_concern=concern).jobs
        collection.insert_one({"_id": "warm-up"})
        out = []
        for seed in range(count):
            hp = mlp(seed)
            key = canonical_key(hp)
            doc = new_job(f"{uuid.uuid4().hex}", key, hp, USER)
            started = time.perf_counter()
            collection.insert_one(doc)
            out.append(time.perf_counter() - started)
        client.drop_database("bench_bare")
        return out
    finally:
        client.close()


async def submit_parts(bench: BenchStack) -> dict[str, list[float]]:
    """The database and JetStream calls a new submission makes, each timed alone.

    Through the scheduler's own JobStore, in a scratch database with the same indexes, and
    JetStream publishes to a scratch file stream on the same server.
    """
    store = JobStore.connect(bench.mongo_uri, "bench_parts")
    nc = await nats.connect(bench.nats_url)
    parts: dict[str, list[float]] = {
        "JobStore.get (a miss)": [],
        "JobStore.count_active": [],
        "JobStore.numbers.next (j=True, beside count_active)": [],
        "JobStore.insert (j=True)": [],
        "JobStore.set_dispatched (j=True)": [],
        "JobStore.get (a hit)": [],
        "JetStream publish + ack (file stream)": [],
        "JobStore.transition -> RUNNING (j=True)": [],
        "JobStore.transition -> SUCCEEDED (j=True)": [],
        "JobStore.rank (leaderboard of 50)": [],
    }
    ids: list[str] = []
    try:
        await store.ensure_indexes()
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(
                name="BENCH_PARTS",
                subjects=["bench.parts.>"],
                storage=StorageType.FILE,
                duplicate_window=600,
            )
        )
        for i in range(SUBMITS):
            hp = normalized(mlp(20_000 + i))
            key = canonical_key(hp)
            jid = job_id(key)
            owner = f"parts-{i // PER_USER}"
            parts["JobStore.get (a miss)"].append(await _timed(store.get(jid)))
            if hasattr(store, "count_active"):
                parts["JobStore.count_active"].append(await _timed(store.count_active(owner, 100)))
            started = time.perf_counter()
            number = await store.numbers.next(owner)
            parts["JobStore.numbers.next (j=True, beside count_active)"].append(
                time.perf_counter() - started
            )
            doc = {**new_job(jid, key, hp, owner), pages.FIELD: number}
            parts["JobStore.insert (j=True)"].append(await _timed(store.insert(doc)))
            parts["JobStore.get (a hit)"].append(await _timed(store.get(jid)))
            publish = js.publish(
                f"bench.parts.{jid}", b"x" * 64, headers={"Nats-Msg-Id": f"{jid}.1"}
            )
            parts["JetStream publish + ack (file stream)"].append(await _timed(publish))
            parts["JobStore.set_dispatched (j=True)"].append(
                await _timed(store.set_dispatched(jid, 1, i + 1))
            )
            ids.append(jid)
        # What the recorder does for a 'started' and a 'succeeded' event before announcing.
        for i, jid in enumerate(ids[:RANKED]):
            running = store.transition(jid, 1, RUNNING, {"attempts": 1}, attempt=0)
            parts["JobStore.transition -> RUNNING (j=True)"].append(await _timed(running))
            result = result_doc(job_pb2.Result(test_accuracy=0.9 + i / 1000))
            done = store.transition(jid, 1, SUCCEEDED, {"result": result}, attempt=1)
            parts["JobStore.transition -> SUCCEEDED (j=True)"].append(await _timed(done))
            ranked = await store.get(jid)
            if ranked is not None:
                rank = store.rank(ranked)
                parts["JobStore.rank (leaderboard of 50)"].append(await _timed(rank))
        await js.delete_stream("BENCH_PARTS")
        await store.jobs.database.client.drop_database("bench_parts")
    finally:
        await nc.close()
        await store.close()
    return {name: values for name, values in parts.items() if values}


async def submit_latency(bench: BenchStack) -> Section:
    """On a stack with no trainer: the jobs stay queued and nothing else competes."""
    new: list[float] = []
    first: list[float] = []
    last: list[float] = []
    deduplicated: list[float] = []
    gets: list[float] = []
    hps = [mlp(10_000 + i) for i in range(SUBMITS)]
    clients = [TunerClient(bench.address, f"{USER}-{i}") for i in range(SUBMITS // PER_USER)]
    try:
        await clients[0].submit(mlp(9_999))  # warm-up: channel, indexes, code paths
        for i, hp in enumerate(hps):
            client = clients[i // PER_USER]
            started = time.perf_counter()
            response = await client.submit(hp)
            took = time.perf_counter() - started
            if response.deduplicated:
                raise RuntimeError("a new configuration was answered as a duplicate")
            new.append(took)
            position = i % PER_USER
            if position < 10:
                first.append(took)
            elif position >= PER_USER - 10:
                last.append(took)
        for i, hp in enumerate(hps):
            started = time.perf_counter()
            response = await clients[i // PER_USER].submit(hp)
            deduplicated.append(time.perf_counter() - started)
            if not response.deduplicated:
                raise RuntimeError("a repeated configuration was not deduplicated")
            gets.append(await _timed(clients[0].get(response.job.id)))
    finally:
        for client in clients:
            await client.close()
    journaled = await asyncio.to_thread(bare_inserts, bench.mongo_uri, SUBMITS, True)
    plain = await asyncio.to_thread(bare_inserts, bench.mongo_uri, SUBMITS, False)
    parts = await submit_parts(bench)
    section = Section(
        "Row 3a: SubmitJob latency at the client vs a bare pymongo insert (same SecantusDB)",
        ["operation", "n", "p50", "p99", "max", "vs bare insert (j=True), p50"],
    )
    base = percentile(journaled, 50)
    for name, values in [
        ("SubmitJob, new", new),
        (f"  new, a user's first 10 of {PER_USER}", first),
        (f"  new, a user's last 10 of {PER_USER}", last),
        ("SubmitJob, deduplicated", deduplicated),
        ("GetJob", gets),
        ("bare insert_one, j=True (as store/)", journaled),
        ("bare insert_one, default write concern", plain),
        *[(f"part: {name}", values) for name, values in parts.items()],
    ]:
        section.rows.append(latency_row(name, values, f"{percentile(values, 50) / base:.1f}x"))
    # A new submit: two gets, a count, an insert, two publishes (announce, dispatch) and
    # set_dispatched. The recorder on 'succeeded': a transition, a get and a rank before it
    # announces SUCCEEDED (then another get).
    submit = {
        "JobStore.get (a miss)": 1,
        "JobStore.count_active": 1,
        "JobStore.insert (j=True)": 1,
        "JobStore.get (a hit)": 1,
        "JetStream publish + ack (file stream)": 2,
        "JobStore.set_dispatched (j=True)": 1,
    }
    succeeded = {
        "JobStore.transition -> SUCCEEDED (j=True)": 1,
        "JobStore.get (a hit)": 2,
        "JobStore.rank (leaderboard of 50)": 1,
    }
    for name, calls in [
        ("sum: a new submit's calls (p50s)", submit),
        ("sum: recorder, 'succeeded' to its announce", succeeded),
    ]:
        total = sum(percentile(parts.get(part, []), 50) * n for part, n in calls.items())
        section.rows.append([name, "", ms(total), "", "", f"{total / base:.1f}x"])
    section.notes.append(
        "one call at a time from one process; no trainer runs, so the new jobs stay queued; "
        f"{SUBMITS // PER_USER} users with {PER_USER} jobs each (the scheduler caps a user's "
        "active jobs); SecantusDB in memory, as the tests run it"
    )
    section.data = {
        "submit_new": stats(new),
        "submit_new_first10": stats(first),
        "submit_new_last10": stats(last),
        "submit_deduplicated": stats(deduplicated),
        "get": stats(gets),
        "bare_insert_journaled": stats(journaled),
        "bare_insert": stats(plain),
        "parts": {name: stats(values) for name, values in parts.items()},
    }
    return section


@dataclass
class Sampler:
    """CPU and peak memory of some processes while a measurement runs."""

    pids: dict[str, int]

    def __post_init__(self) -> None:
        self.start = {name: ProcessSample.of(pid) for name, pid in self.pids.items()}
        self.peak = {name: s.rss_mib for name, s in self.start.items()}
        self.started = time.monotonic()

    def sample(self) -> None:
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], ProcessSample.of(pid).rss_mib)

    def result(self) -> Json:
        wall = time.monotonic() - self.started
        out: Json = {"wall_s": wall}
        for name, pid in self.pids.items():
            end = ProcessSample.of(pid)
            cpu = end.cpu_seconds - self.start[name].cpu_seconds
            out[name] = {
                "cpu_s": cpu,
                "cpu_percent": 100 * cpu / wall,
                "rss_start_mib": self.start[name].rss_mib,
                "rss_peak_mib": self.peak[name],
            }
        return out


async def stream_state(nats_url: str, subject: str) -> tuple[int, int]:
    """Events the stream holds for one job run (what every watcher must get), and how many
    consumers TUNER_EVENTS has (nats-server 2.15 allows a stream 1000 unless told more)."""
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(streams.EVENTS_STREAM, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0)), int(info.state.consumer_count)
    finally:
        await nc.close()


async def consumers_drained(nats_url: str, baseline: int, timeout: float = 120) -> float:
    """Seconds until the watchers' consumers are gone from the server (NaN: not in time)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if (await stream_state(nats_url, "-"))[1] <= baseline:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    return float("nan")


async def fan_out(bench: BenchStack, watchers: int, seed: int) -> Json:
    """`watchers` WatchJob streams on one job, spread over channels of 100 streams each."""
    channels = max(1, watchers // WATCHERS_PER_CHANNEL)
    clients = [TunerClient(bench.address, USER) for _ in range(channels)]
    pids = {"scheduler": bench.pid("scheduler"), "nats": bench.pid("nats")}
    baseline = (await stream_state(bench.nats_url, "-"))[1]
    try:
        epochs = LATENCY_EPOCHS if watchers == 1 else FANOUT_EPOCHS
        submitted = await clients[0].submit(mlp(seed, epochs=epochs))
        job = submitted.job.id
        submitted_at = time.time()
        sampler = Sampler(pids)
        bench_cpu = time.process_time()
        seen = [Watched(job) for _ in range(watchers)]
        readies = [asyncio.Event() for _ in range(watchers)]
        tasks = [
            asyncio.create_task(watch(clients[i % channels], job, readies[i], seen[i]))
            for i in range(watchers)
        ]
        all_ready: float | None = None
        deadline = time.monotonic() + FANOUT_TIMEOUT
        while time.monotonic() < deadline and not all(t.done() for t in tasks):
            if all_ready is None and all(r.is_set() for r in readies):
                all_ready = time.time()
            sampler.sample()
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [
            " ".join(str(r.details() if isinstance(r, grpc.aio.AioRpcError) else r).split())
            for r in outcomes
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
        ]
        usage = sampler.result()
        usage["bench_client"] = {"cpu_s": time.process_time() - bench_cpu}
        subject = streams.events_subject(job, submitted.job.run)
        expected, consumers_left = await stream_state(bench.nats_url, subject)
    finally:
        for client in clients:
            await client.close()
    # The next watcher fails while the server still counts these; wait for them to go.
    drained_s = await consumers_drained(bench.nats_url, baseline)
    counts = [len(w.events) for w in seen]
    finished = [w for w in seen if w.final is not None and w.final.state in states.TERMINAL]
    reference = max((w.sequences() for w in seen), key=len)
    complete = all(w.sequences() == reference for w in seen) and len(reference) == expected
    # Each watcher counts the events sent once it was connected (earlier ones are a replay).
    latencies = [lat for w in seen for lat in trainer_latencies(w, w.connected_at)]
    progress = [lat for w in seen for lat in trainer_latencies(w, w.connected_at, "progress")]
    first = seen[0].first("started")
    started = seconds(first[1].time) if first else float("nan")
    return {
        "watchers": watchers,
        "job": job,
        "events_in_stream": expected,
        "every_watcher_got_every_event": complete,
        "watchers_connected": sum(r.is_set() for r in readies),
        "watchers_finished": len(finished),
        "events_per_watcher_min_max": [min(counts), max(counts)],
        "errors": errors[:5],
        "watchers_ready_s": float("nan") if all_ready is None else all_ready - submitted_at,
        "trainer_to_watcher": stats(latencies),
        "progress_to_watcher": stats(progress),
        "usage": usage,
        "consumers_left_at_end": max(0, consumers_left - baseline),
        "consumers_gone_after_s": drained_s,
        "job_s": max(w.ended_at for w in seen) - started,
    }


async def watch_latency_and_fan_out(
    bench: BenchStack, counts: list[int], title: str, first_seed: int
) -> Section:
    results = [await fan_out(bench, count, first_seed + i) for i, count in enumerate(counts)]
    bench.jobs_trained += len(counts)
    section = Section(
        f"{title}: one MLP job each ({LATENCY_EPOCHS} epochs for 1 watcher, else {FANOUT_EPOCHS})",
        [
            "watchers",
            "connected/finished",
            "events each (stream)",
            "all got all",
            "ready in",
            "progress p50",
            "progress p99",
            "all events p99",
            "scheduler CPU",
            "scheduler RSS",
            "RSS per watcher",
            "nats CPU",
            "consumers left, gone in",
        ],
    )
    for r in results:
        sched, server = r["usage"]["scheduler"], r["usage"]["nats"]
        grown_kib = (sched["rss_peak_mib"] - sched["rss_start_mib"]) * 1024
        section.rows.append(
            [
                str(r["watchers"]),
                f"{r['watchers_connected']}/{r['watchers_finished']}",
                "{}-{} ({})".format(*r["events_per_watcher_min_max"], r["events_in_stream"]),
                "yes" if r["every_watcher_got_every_event"] else "NO",
                f"{r['watchers_ready_s']:.1f} s",
                ms(r["progress_to_watcher"]["p50"]),
                ms(r["progress_to_watcher"]["p99"]),
                ms(r["trainer_to_watcher"]["p99"]),
                f"{sched['cpu_percent']:.0f}% ({sched['cpu_s']:.1f} s)",
                f"{sched['rss_start_mib']:.0f}->{sched['rss_peak_mib']:.0f} MiB",
                f"{grown_kib / r['watchers']:.0f} KiB",
                f"{server['cpu_percent']:.0f}% ({server['cpu_s']:.1f} s)",
                f"{r['consumers_left_at_end']}, {r['consumers_gone_after_s']:.1f} s",
            ]
        )
    section.notes += [
        "latency = arrival at the watcher minus the trainer's event.time (same clock), for the "
        f"events sent after that watcher connected; target p99 < {ms(TARGET_P99)} (one "
        "watcher); 'ready in' = submit to the last watcher's first response",
        "CPU is the process's user+system time over the job's wall time (100% = one core); "
        "the watchers run in the bench process on the same 2 cores",
    ]
    for r in results:
        if r["errors"]:
            failed = r["watchers"] - r["watchers_finished"]
            section.notes.append(
                f"{r['watchers']} watchers: {failed} failed, e.g. {r['errors'][0]}"
            )
    section.data = {"fan_out": results}
    return section


def submit_stack(state_dir: Path, data_dir: Path) -> BenchStack:
    return BenchStack.start(state_dir, data_dir, trainers=0)
