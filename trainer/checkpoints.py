"""Runs' checkpoints and jobs' final models in the JetStream object store: format, save, latest.

A checkpoint is torch.save of a dict (FORMAT, the run's lineage and device type, the State of
trainer/training.py, and each epoch's metrics with the job run that trained it), one object a
epoch (streams.checkpoint_object): a put interrupted midway stores no object of that name (the
object store writes its metadata last), so the previous epoch's stays whole. nats-py checks an
object's SHA-256 digest as it reads it; a checkpoint that is missing, fails its digest or does
not load is passed over for the epoch before it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from typing import Any

import torch
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ObjectMeta
from nats.js.errors import DigestMismatchError, NotFoundError
from nats.js.object_store import ObjectStore

from trainer import models, objects
from trainer.training import State, make_optimizer
from tuner.core import streams
from tuner.v1 import job_pb2

log = logging.getLogger(__name__)

FORMAT = 1
# An epoch checkpoint kept when a longer job of the lineage succeeds: a job's final epoch.
FINAL = "final"
CHUNK_BYTES = 512 * 1024  # the object store's default is 128 KiB: a put costs a publish a chunk
# nats-py waits for missing chunks forever (a delete that purges them under a read): a read
# gets a few seconds and one more a megabyte (14 MB reads in under a second here).
READ_TIMEOUT = 5.0
READ_SECONDS_PER_MB = 1.0
WRITE_TIMEOUT = 60.0


class Damaged(Exception):
    """Bytes that are not a usable checkpoint of the run asked for."""


@dataclass(frozen=True)
class Origin:
    """The job run that trained an epoch."""

    job_id: str
    run: int


@dataclass(frozen=True)
class Checkpoint:
    lineage: str
    device_type: str
    state: State  # state.epochs as their trainers reported them (attempt set, never reused)
    origins: tuple[Origin, ...]  # one an epoch

    @property
    def epoch(self) -> int:
        return self.state.epoch

    def reported(self, job_id: str, run: int) -> list[job_pb2.EpochMetrics]:
        """The epochs as job_id's run reports them: its own keep their attempt; others' are
        reused (attempt 0)."""
        epochs = []
        for metrics, origin in zip(self.state.epochs, self.origins, strict=True):
            copy = job_pb2.EpochMetrics()
            copy.CopyFrom(metrics)
            if origin != Origin(job_id, run):
                copy.attempt, copy.reused = 0, True
            epochs.append(copy)
        return epochs


def encode(checkpoint: Checkpoint) -> bytes:
    """The checkpoint's bytes: torch.save of a plain dict (tensors on the CPU)."""
    state = checkpoint.state
    if not (len(state.epochs) == len(checkpoint.origins) == state.epoch):
        raise ValueError(f"epoch {state.epoch} with {len(state.epochs)} epochs of metrics")
    payload: dict[str, Any] = {
        "format": FORMAT,
        "lineage": checkpoint.lineage,
        "device_type": checkpoint.device_type,
        "epoch": state.epoch,
        "model": state.model,
        "optimizer": state.optimizer,
        "rng": state.rng,
        "cuda_rng": state.cuda_rng,
        "generator": state.generator,
        "epochs": [
            {"metrics": m.SerializeToString(), "job_id": o.job_id, "run": o.run}
            for m, o in zip(state.epochs, checkpoint.origins, strict=True)
        ],
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def decode(data: bytes, hp: job_pb2.Hyperparameters, lineage: str, device_type: str) -> Checkpoint:
    """The checkpoint in `data`, checked to be one of `lineage` on `device_type` that hp's
    model and optimizer load; raises Damaged saying what is wrong."""
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # truncated or altered bytes: zip, pickle or tensor errors
        raise Damaged(f"does not load: {_short(error)}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise Damaged(f"format {got!r}, not {FORMAT}")
    try:
        checkpoint = _checkpoint(payload)
    except (KeyError, TypeError, ValueError) as error:
        raise Damaged(f"malformed: {_short(error)}") from error
    if (checkpoint.lineage, checkpoint.device_type) != (lineage, device_type):
        raise Damaged(f"of run {checkpoint.lineage}/{checkpoint.device_type}")
    _check_loads(checkpoint.state, hp)
    return checkpoint


def _checkpoint(payload: dict[str, Any]) -> Checkpoint:
    epoch = payload["epoch"]
    epochs, origins = [], []
    for index, entry in enumerate(payload["epochs"], start=1):
        metrics = job_pb2.EpochMetrics.FromString(entry["metrics"])
        if metrics.epoch != index:
            raise ValueError(f"epoch {metrics.epoch}'s metrics in place {index}")
        epochs.append(metrics)
        origins.append(Origin(str(entry["job_id"]), int(entry["run"])))
    if not isinstance(epoch, int) or epoch < 1 or len(epochs) != epoch:
        raise ValueError(f"epoch {epoch!r} with {len(epochs)} epochs of metrics")
    reference = torch.get_rng_state()
    for name in ("rng", "generator"):
        tensor = payload[name]
        if not (
            isinstance(tensor, torch.Tensor)
            and tensor.dtype == torch.uint8
            and tensor.shape == reference.shape
        ):
            raise ValueError(f"{name} is not a generator's state")
    cuda_rng = payload["cuda_rng"]
    if cuda_rng is not None and not isinstance(cuda_rng, torch.Tensor):
        raise TypeError("cuda_rng is not a generator's state")
    if not isinstance(payload["model"], dict) or not isinstance(payload["optimizer"], dict):
        raise TypeError("model or optimizer is not a state dict")
    state = State(
        epoch=epoch,
        model=payload["model"],
        optimizer=payload["optimizer"],
        rng=payload["rng"],
        cuda_rng=cuda_rng,
        generator=payload["generator"],
        epochs=tuple(epochs),
    )
    return Checkpoint(str(payload["lineage"]), str(payload["device_type"]), state, tuple(origins))


def _check_loads(state: State, hp: job_pb2.Hyperparameters) -> None:
    """hp's network and optimizer take the state: training would fail on it otherwise."""
    with torch.random.fork_rng(devices=[]):  # building a network draws its initial weights
        network = models.build(hp.model)
    try:
        network.load_state_dict(state.model)
        make_optimizer(hp.optimizer, network.parameters(), hp.learning_rate).load_state_dict(
            state.optimizer
        )
    except Exception as error:
        raise Damaged(f"does not fit the model: {_short(error)}") from error


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class Store:
    """The TUNER_CHECKPOINTS bucket (ensure_streams makes it): checkpoints and final models."""

    def __init__(self, nc: Client, js: JetStreamContext, chunk_bytes: int = CHUNK_BYTES) -> None:
        """`chunk_bytes`: at most the server's max_payload (1 MiB by default)."""
        self._nc = nc
        self._js = js
        self._chunk_bytes = chunk_bytes
        self._bucket: ObjectStore | None = None

    async def _store(self) -> ObjectStore:
        if self._bucket is None:
            self._bucket = await self._js.object_store(streams.CHECKPOINTS_BUCKET)
        return self._bucket

    async def put(self, name: str, data: bytes, description: str | None = None) -> None:
        """Store `data` as object `name`; raises what NATS raises, TimeoutError after a minute."""
        bucket = await self._store()
        stored = objects.put(
            self._nc,
            self._js,
            bucket,
            streams.CHECKPOINTS_BUCKET,
            name,
            data,
            self._chunk_bytes,
            description,
        )
        await asyncio.wait_for(stored, WRITE_TIMEOUT)

    async def get(self, name: str) -> bytes | None:
        """Object `name`'s bytes, digest checked; None if there is none (or it is deleted)."""
        bucket = await self._store()
        try:
            info = await asyncio.wait_for(bucket.get_info(name), READ_TIMEOUT)
            timeout = READ_TIMEOUT + (info.size or 0) / 1e6 * READ_SECONDS_PER_MB
            result = await asyncio.wait_for(bucket.get(name), timeout)
        except NotFoundError:
            return None
        return result.data or b""

    async def save(self, checkpoint: Checkpoint, data: bytes) -> None:
        """Put the encoded checkpoint under its epoch's name; a job's final mark is kept."""
        name = streams.checkpoint_object(
            checkpoint.lineage, checkpoint.device_type, checkpoint.epoch
        )
        await self.put(name, data, FINAL if await self._is_final(name) else None)

    async def latest(
        self, hp: job_pb2.Hyperparameters, lineage: str, device_type: str, job_id: str = ""
    ) -> Checkpoint | None:
        """The run's checkpoint of the highest epoch <= hp.epochs that is whole, or None.

        One that fails its digest or does not load is logged and passed over; so is one NATS
        does not give (the trainer then trains more, never wrongly).
        """
        try:
            await self._store()
        except Exception as error:
            log.warning(
                "job %s: no checkpoints to be had (%r): training from scratch", job_id, error
            )
            return None
        for epoch in range(hp.epochs, 0, -1):
            name = streams.checkpoint_object(lineage, device_type, epoch)
            try:
                data = await self.get(name)
                if data is None:
                    continue
                return await asyncio.to_thread(decode, data, hp, lineage, device_type)
            except DigestMismatchError:
                why = "is damaged (its SHA-256 digest does not match)"
            except Damaged as error:
                why = f"is damaged ({error})"
            except Exception as error:  # a timeout, NATS away, a bad object meta
                why = f"could not be read ({type(error).__name__}: {_short(error)})"
            after = f"trying epoch {epoch - 1}" if epoch > 1 else "training from scratch"
            log.warning("job %s: checkpoint %s %s: %s", job_id, name, why, after)
        return None

    async def finish(self, lineage: str, device_type: str, epoch: int, job_id: str = "") -> None:
        """Mark epoch `epoch`'s checkpoint a job's final one, and delete the run's epoch
        checkpoints below it but other jobs' final ones (a longer job continues from those)."""
        bucket = await self._store()
        final = streams.checkpoint_object(lineage, device_type, epoch)
        try:
            await bucket.update_meta(final, ObjectMeta(name=final, description=FINAL))
        except NotFoundError:
            log.warning("job %s: its final checkpoint %s is not stored", job_id, final)
        for earlier in range(1, epoch):
            name = streams.checkpoint_object(lineage, device_type, earlier)
            try:
                info = await bucket.get_info(name)
                if info.description != FINAL:
                    await bucket.delete(name)
            except NotFoundError:
                continue

    async def _is_final(self, name: str) -> bool:
        bucket = await self._store()
        try:
            return (await bucket.get_info(name)).description == FINAL
        except NotFoundError:
            return False
