"""Row 3e: the scheduler's fan-out with the cores to itself and its watchers.

Row 3b's job trains on the same 2 cores as the scheduler and the bench's watchers. Here no
trainer runs: a job stays queued while this process publishes progress events on its subject,
as a trainer would, at the trainer's default pace; the watchers run in a process of their own.
What is left is the scheduler's part of an event's latency, and its CPU for each event.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import nats

from benchmarks.cluster import BenchStack, mlp
from benchmarks.common import Json, ProcessSample, Section, ms
from benchmarks.control import WATCHERS_PER_CHANNEL, stats
from tuner.client import TunerClient
from tuner.core import states, streams
from tuner.v1 import event_pb2

USER = "bench-fan-out"  # a user of its own, under the cap on active jobs
EVENTS = 40  # about a 4-epoch MLP job's
PACE = 0.2  # seconds between events: the trainer's TUNER_PROGRESS_INTERVAL default
TIMEOUT = 300.0


async def run(bench: BenchStack, counts: list[int]) -> Section:
    results = [await _one(bench, count, seed) for seed, count in enumerate(counts, 12_000)]
    section = Section(
        f"Row 3e: the scheduler's fan-out alone ({EVENTS} progress events {PACE:g} s apart on "
        "a queued job, no trainer, the watchers in a process of their own)",
        [
            "watchers",
            "all got all",
            "p50",
            "p99",
            "max",
            "scheduler CPU an event",
            "watchers' CPU an event",
        ],
    )
    for r in results:
        section.rows.append(
            [
                str(r["watchers"]),
                "yes" if r["every_watcher_got_every_event"] else "NO",
                ms(r["p50"]),
                ms(r["p99"]),
                ms(r["max"]),
                ms(r["scheduler_cpu_s"] / EVENTS),
                ms(r["watchers_cpu_s"] / EVENTS),
            ]
        )
    section.notes.append(
        "latency = arrival at the watcher minus the event's time, set as it is published; "
        "CPU is user+system time over the events"
    )
    section.data = {"fan_out_alone": results}
    return section


async def _one(bench: BenchStack, watchers: int, seed: int) -> Json:
    client = TunerClient(bench.address, USER)
    try:
        job = (await client.submit(mlp(seed))).job
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.fanout_alone",
            bench.address,
            job.id,
            str(watchers),
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            async with asyncio.timeout(TIMEOUT):
                if await process.stdout.readline() != b"ready\n":
                    raise RuntimeError("the watchers did not all connect")
                scheduler = bench.pid("scheduler")
                before = ProcessSample.of(scheduler).cpu_seconds
                await _publish(bench.nats_url, job.id, job.run)
                used = ProcessSample.of(scheduler).cpu_seconds - before
                await client.cancel(job.id)  # its state change ends every watcher
                result: Json = json.loads(await process.stdout.readline())
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
    finally:
        await client.close()
    return {"watchers": watchers, "scheduler_cpu_s": used, **result}


async def _publish(nats_url: str, job_id: str, run: int) -> None:
    subject = streams.events_subject(job_id, run)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for step in range(1, EVENTS + 1):
            event = event_pb2.JobEvent(job_id=job_id, run=run, attempt=1)
            event.progress.step = step
            event.progress.total_steps = EVENTS
            event.time.GetCurrentTime()
            await js.publish(subject, event.SerializeToString())
            await asyncio.sleep(PACE)
    finally:
        await nc.close()


async def _watch_all(address: str, job_id: str, count: int) -> Json:
    """`count` watchers of one job: each event's latency, and whether all saw the same."""
    clients = [TunerClient(address, USER) for _ in range(max(1, count // WATCHERS_PER_CHANNEL))]
    connected = 0
    all_connected = asyncio.Event()
    latencies: list[float] = []

    async def watch(client: TunerClient) -> list[int]:
        nonlocal connected
        sequences = []
        async for response in client.watch(job_id):
            arrived = time.time()
            if response.HasField("job"):
                connected += 1
                if connected == count:
                    all_connected.set()
                continue
            event = response.event
            if event.HasField("state_changed"):
                if event.state_changed.job.state in states.TERMINAL:
                    break
                continue
            latencies.append(arrived - event.time.ToNanoseconds() / 1e9)
            sequences.append(event.sequence)
        return sequences

    started = time.process_time()
    tasks = [asyncio.create_task(watch(clients[i % len(clients)])) for i in range(count)]
    await all_connected.wait()
    print("ready", flush=True)
    seen = await asyncio.gather(*tasks)
    used = time.process_time() - started
    for client in clients:
        await client.close()
    return {
        "every_watcher_got_every_event": all(s == seen[0] for s in seen) and len(seen[0]) == EVENTS,
        **stats(latencies),
        "watchers_cpu_s": used,  # their connecting included
    }


if __name__ == "__main__":
    address, job_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(asyncio.run(_watch_all(address, job_id, count))), flush=True)
