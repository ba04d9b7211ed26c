"""Row 7: checkpoints' size and cost per epoch, and what a kill -9 at 80% of a job costs.

7a runs in a process of its own (`python -m benchmarks.checkpoints NATS_URL`, so its first
export is the process's first) against the stack's NATS: the MLP and the CNN each train one
real epoch on MNIST, and the State on_state got is checkpointed REPS times, each under a
lineage of its own (a new object, as each epoch's is), read back and its final models made.

7b runs a 5-epoch MLP job three times on a stack with two trainers: uninterrupted; with its
trainer killed (SIGKILL) when the job's 4th epoch_completed reaches the client, the other
trainer continuing from the epoch-4 checkpoint after the ack wait; and killed alike with the
lineage's checkpoints deleted before the redelivery, so that it trains from scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
from pathlib import Path

import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from benchmarks.cluster import USER, BenchStack, mlp
from benchmarks.common import (
    Json,
    Section,
    data_root,
    load_average,
    ms,
    now,
    percentile,
    run_worker,
)
from benchmarks.sweeps import ready_trainers
from tuner.client import TunerClient
from tuner.core import states, streams
from tuner.core.hyperparameters import lineage
from tuner.v1 import job_pb2

REPS = 10
SEED = 7_000  # 7a's training
SEEDS = {"uninterrupted": 7_001, "resumed": 7_002, "scratch": 7_003}  # 7b: lineages apart
EPOCHS, KILL_AFTER = 5, 4  # the kill at 80% of the job
ACK_WAIT_S = 5  # scheduler and trainers: a killed trainer's job is redelivered soon
ACK_WAIT = {"TUNER_ACK_WAIT_SECONDS": str(ACK_WAIT_S)}
MODELS = {"mlp": job_pb2.MODEL_MLP, "cnn": job_pb2.MODEL_CNN}
PARTS = ("encode", "put", "latest", "state_dict", "export")  # 7a's steps, in order


def measure(root: Path, nats_url: str) -> Json:
    """7a, in this process: each model's epoch, checkpoint and final models, timed."""
    import torch

    from trainer import data, export, training
    from trainer.checkpoints import CHUNK_BYTES, Checkpoint, Origin, Store, encode

    cpu = torch.device("cpu")
    dataset = data.load(job_pb2.DATASET_MNIST, root, cpu)

    def ignore(_: object) -> None:
        pass

    trained: dict[str, tuple[job_pb2.Hyperparameters, training.State]] = {}
    for name, model in MODELS.items():
        hp = mlp(SEED)
        hp.model = model
        got: list[training.State] = []  # its tensors are the live ones: none change after it
        training.train(hp, dataset, cpu, ignore, ignore, lambda: False, on_state=got.append)
        trained[name] = hp, got[-1]

    async def timed(store: Store, name: str) -> Json:
        hp, state = trained[name]
        seconds: dict[str, list[float]] = {p: [] for p in (*PARTS, "get")}
        for index in range(REPS):
            checkpoint = Checkpoint(f"bench-{name}-{index}", "cpu", state, (Origin("bench", 1),))
            t0 = now()
            blob = encode(checkpoint)
            t1 = now()
            await store.save(checkpoint, blob)
            t2 = now()
            back = await store.latest(hp, checkpoint.lineage, "cpu")
            t3 = now()
            weights = export.state_dict_bytes(state.model)
            t4 = now()
            program = export.exported_bytes(hp.model, state.model, dataset.mean, dataset.std)
            t5 = now()
            if back is None or back.epoch != state.epoch:
                raise RuntimeError(f"{name}: checkpoint {index} not read back")
            for part, (a, b) in zip(
                PARTS, itertools.pairwise([t0, t1, t2, t3, t4, t5]), strict=True
            ):
                seconds[part].append(b - a)
            await store.get(streams.checkpoint_object(checkpoint.lineage, "cpu", state.epoch))
            seconds["get"].append(now() - t5)  # the get alone, once more
        epoch = state.epochs[-1]
        return {
            "epoch_s": (
                epoch.training_duration.ToNanoseconds() + epoch.evaluation_duration.ToNanoseconds()
            ) / 1e9,
            "bytes": {"checkpoint": len(blob), "state_dict": len(weights), "export": len(program)},
            "seconds": seconds,
        }  # fmt: skip

    async def store_and_load() -> Json:
        nc = await streams.connect(nats_url, "bench-checkpoints")
        store = Store(nc, nc.jetstream(), min(CHUNK_BYTES, nc.max_payload // 2 or CHUNK_BYTES))
        try:
            return {name: await timed(store, name) for name in trained}
        finally:
            await nc.close()

    return asyncio.run(store_and_load())


async def forget(js: JetStreamContext, hp: job_pb2.Hyperparameters) -> int:
    """Delete the lineage's epoch checkpoints; returns how many there were."""
    bucket = await js.object_store(streams.CHECKPOINTS_BUCKET)
    deleted = 0
    for epoch in range(1, EPOCHS + 1):
        with contextlib.suppress(NotFoundError):
            await bucket.delete(streams.checkpoint_object(lineage(hp), "cpu", epoch))
            deleted += 1
    return deleted


async def job(bench: BenchStack, client: TunerClient, js: JetStreamContext, way: str) -> Json:
    """One 5-epoch job, submit to SUCCEEDED at the client; `way` says what befalls its trainer."""
    hp = mlp(SEEDS[way], EPOCHS)
    started = time.time()
    response = await client.submit(hp)
    if response.deduplicated:
        raise RuntimeError(f"job {response.job.id} ran before: use another seed")
    trainer, killed, restarted, deleted = "", 0.0, 0.0, 0
    async for reply in client.watch(response.job.id):
        if reply.WhichOneof("kind") != "event":
            continue
        event = reply.event
        if event.HasField("started"):
            if event.attempt == 1:
                trainer = event.started.trainer
            elif killed and not restarted:
                restarted = time.time()
        elif (
            way != "uninterrupted"
            and not killed
            and event.HasField("epoch_completed")
            and event.epoch_completed.epoch == KILL_AFTER
        ):
            process = bench.stack.process(trainer)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            killed = time.time()
            if way == "scratch":
                deleted = await forget(js, hp)
        elif event.HasField("state_changed") and event.state_changed.job.state in states.TERMINAL:
            break
    wall = time.time() - started
    final = await client.get(response.job.id)
    if final.state != job_pb2.JOB_STATE_SUCCEEDED:
        raise RuntimeError(f"job {final.id} ended {job_pb2.JobState.Name(final.state)}")
    return {
        "seed": hp.seed,
        "wall_s": wall,
        "attempts": final.attempts,
        "by_attempt_2": sum(1 for m in final.history if m.attempt == 2),
        "kill_to_restart_s": restarted - killed if killed else None,
        "checkpoints_deleted": deleted,
        "history": [(m.epoch, m.attempt) for m in final.history],
    }


async def on_stack(bench: BenchStack, root: Path) -> tuple[Json, dict[str, Json]]:
    env = dict(os.environ, TUNER_DATA_DIR=str(root))
    jobs: dict[str, Json] = {}
    nc = await nats.connect(bench.nats_url)
    try:
        async with TunerClient(bench.address, USER) as client:
            await ready_trainers(client, bench.trainers)
            worker = "benchmarks.checkpoints"
            sizes = await asyncio.to_thread(run_worker, worker, [bench.nats_url], env)
            for way in SEEDS:
                alive = [n for n in bench.trainers if bench.stack.process(n).poll() is None]
                if len(alive) < 2:  # a warm trainer in the killed one's place
                    bench.start_trainers(1)
                    await ready_trainers(client, [*alive, bench.trainers[-1]])
                jobs[way] = await job(bench, client, nc.jetstream(), way)
    finally:
        await nc.close()
    return sizes, jobs


def sizes_section(measured: Json, load: str) -> Section:
    def mb(n: int) -> str:
        return f"{n / 1e6:.2f} MB"

    section = Section(
        f"Row 7a: a checkpoint and the final models after one epoch (MNIST, batch 64, Adam), "
        f"p50 of {REPS}",
        ["model", "epoch (train+eval)", "checkpoint", "encode", "put", "get+decode",
         "get alone", "save / epoch", "state dict", "its ms", "exported", "first export",
         "later exports"],
    )  # fmt: skip
    for name, m in measured.items():
        t, b = m["seconds"], m["bytes"]
        p50 = {part: percentile(values, 50) for part, values in t.items()}
        save = p50["encode"] + p50["put"]
        section.rows.append([
            name, f"{m['epoch_s']:.1f} s", mb(b["checkpoint"]), ms(p50["encode"]),
            ms(p50["put"]), ms(p50["latest"]), ms(p50["get"]), f"{save / m['epoch_s']:.1%}",
            mb(b["state_dict"]), ms(p50["state_dict"]), mb(b["export"]), ms(t["export"][0]),
            ms(percentile(t["export"][1:], 50)),
        ])  # fmt: skip
    section.notes += [
        "each model trained one real epoch in a process of its own, its State as on_state "
        f"hands it checkpointed {REPS} times, each under a lineage of its own (a new object, "
        "as an epoch's is), on the stack's NATS (file storage, 512 KiB chunks)",
        "encode = trainer.checkpoints.encode (torch.save); put = Store.save; get+decode = "
        "Store.latest (get, SHA-256 check, torch.load, the model and optimizer loading it); "
        "get alone = Store.get of the same object once more (nats-py's object store read); "
        "save / epoch = (encode + put) over the epoch: the training thread waits for both",
        "first export = the model's first torch.export in the process, a trace (the MLP's is "
        "the process's first export); later = the traced program with the weights copied in",
        load,
    ]
    section.data = measured
    return section


def kill_section(jobs: Json, load: str) -> Section:
    labels = {
        "uninterrupted": "(i) uninterrupted",
        "resumed": f"(ii) kill -9 after epoch {KILL_AFTER}, resumed from its checkpoint",
        "scratch": f"(iii) kill -9 after epoch {KILL_AFTER}, checkpoints deleted: from scratch",
    }
    base = jobs["uninterrupted"]["wall_s"]
    section = Section(
        f"Row 7b: a {EPOCHS}-epoch MLP job (MNIST, batch 64, Adam) on 2 trainers, its trainer "
        f"killed at 80% ({KILL_AFTER} of {EPOCHS} epochs), ack wait {ACK_WAIT_S} s",
        ["run", "seed", "wall s", "attempts", "epochs by attempt 2", "kill -> attempt 2 started",
         "cost of the kill"],
    )  # fmt: skip
    for way, j in jobs.items():
        restart = j["kill_to_restart_s"]
        section.rows.append([
            labels[way], str(j["seed"]), f"{j['wall_s']:.1f}", str(j["attempts"]),
            str(j["by_attempt_2"]) if j["attempts"] > 1 else "",
            f"{restart:.1f} s" if restart is not None else "",
            f"{j['wall_s'] - base:+.1f} s" if way != "uninterrupted" else "",
        ])  # fmt: skip
    saved = jobs["scratch"]["wall_s"] - jobs["resumed"]["wall_s"]
    section.rows.append(["resuming saves, (iii) - (ii)", "", "", "", "", "", f"{saved:.1f} s"])
    section.notes += [
        "wall = the submit call to SUCCEEDED at the client; the kill comes when the 4th "
        "epoch_completed reaches the client (its checkpoint is stored before it is reported); "
        "the job is redelivered to the other trainer once its ack wait runs out after the last "
        "heartbeat (every ack wait / 3), for scheduler and trainers alike",
        f"(iii) deletes the lineage's runs/ objects right after the kill "
        f"({jobs['scratch']['checkpoints_deleted']} deleted), before the redelivery",
        "each run has its own seed so that none reuses another's checkpoints; the seed changes "
        "the weights, not the cost; a warm trainer replaces the killed one before the next run",
        load,
    ]
    section.data = jobs
    return section


def run(state: Path) -> list[Section]:
    root = data_root()
    bench = BenchStack.start(state, root, trainers=0, scheduler_env=ACK_WAIT)
    try:
        bench.stack.env.update(ACK_WAIT)  # the trainers' too
        bench.start_trainers(2)
        before = load_average()
        measured, jobs = asyncio.run(on_stack(bench, root))
    finally:
        bench.stop()
    load = f"load average (1 min) before and after the row: {before:.1f}-{load_average():.1f}"
    return [sizes_section(measured, load), kill_section(jobs, load)]


if __name__ == "__main__":
    print(json.dumps(measure(Path(os.environ["TUNER_DATA_DIR"]), sys.argv[1])))
