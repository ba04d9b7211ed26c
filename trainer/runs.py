"""One job run's checkpoints: where it continues from, a checkpoint each epoch, its final models.

The training thread hands each epoch's state to `on_state`, which encodes it there and waits
for the event loop to store it before the epoch is reported: an epoch reported is one a
restart does not train again. The last epoch's is only kept there: `store_final` encodes it
and makes the final models after training, while the trainer trains its next job, and stores
all three before the success is reported (a trainer dying in between trains the last epoch
again). A checkpoint or model that cannot be stored costs a warning, never the job.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from nats.js.errors import NotFoundError

from trainer import checkpoints, export
from trainer.checkpoints import Checkpoint, Origin
from trainer.data import Dataset
from trainer.training import State
from tuner.core import streams
from tuner.core.hyperparameters import lineage
from tuner.core.retry import Backoff
from tuner.v1 import job_pb2

log = logging.getLogger(__name__)

SAVE_WAIT = 90.0  # the training thread waits this long for a checkpoint's put at most
MODEL_TRIES = 3


@dataclass(frozen=True)
class Models:
    state_dict: bytes
    exported: bytes


class Run:
    """The checkpoints of one attempt of one job run, on one kind of device."""

    def __init__(
        self,
        store: checkpoints.Store,
        job_id: str,
        run: int,
        hp: job_pb2.Hyperparameters,
        device_type: str,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._run = run
        self._hp = hp
        self._lineage = lineage(hp)
        self._device_type = device_type
        self._loop = loop
        self._origins: tuple[Origin, ...] = ()
        self.restored: Checkpoint | None = None
        self.last: State | None = None  # the latest state: restored, then each epoch's
        self._final: Checkpoint | None = None  # the last epoch's, stored by store_final

    async def restore(self) -> Checkpoint | None:
        """The latest whole checkpoint of the run's lineage on this kind of device, if any."""
        self.restored = await self._store.latest(
            self._hp, self._lineage, self._device_type, self._job_id
        )
        if self.restored is not None:
            self._origins = self.restored.origins
            self.last = self.restored.state
            log.info(
                "job %s run %d: continuing after epoch %d of %d (%s)",
                self._job_id, self._run, self.restored.epoch, self._hp.epochs,
                streams.checkpoint_object(self._lineage, self._device_type, self.restored.epoch),
            )  # fmt: skip
        return self.restored

    def on_state(self, state: State) -> None:
        """In the training thread: encode the epoch's checkpoint and wait until it is stored."""
        self.last = state
        new = state.epoch - len(self._origins)
        origins = self._origins + (Origin(self._job_id, self._run),) * new
        checkpoint = Checkpoint(self._lineage, self._device_type, state, origins)
        if state.epoch == self._hp.epochs:
            self._final = checkpoint  # encoded once train() has returned: nothing changes it then
            return
        started = time.perf_counter()
        data = checkpoints.encode(checkpoint)
        encoded = time.perf_counter()
        future = asyncio.run_coroutine_threadsafe(self._save(checkpoint, data), self._loop)
        try:
            stored = future.result(timeout=SAVE_WAIT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.warning(
                "job %s: checkpoint of epoch %d not stored in %.0f s: going on without it",
                self._job_id, state.epoch, SAVE_WAIT,
            )  # fmt: skip
            return
        if not stored:
            return
        log.info(
            "job %s: checkpoint of epoch %d: %.1f MB, encoded in %.0f ms, stored in %.0f ms",
            self._job_id, state.epoch, len(data) / 1e6, (encoded - started) * 1e3,
            (time.perf_counter() - encoded) * 1e3,
        )  # fmt: skip

    async def _save(self, checkpoint: Checkpoint, data: bytes) -> bool:
        try:
            await self._store.save(checkpoint, data)
            return True
        except Exception as error:
            log.warning(
                "job %s: checkpoint of epoch %d not stored (%r): a restart trains it again",
                self._job_id, checkpoint.epoch, error,
            )  # fmt: skip
            return False

    def _models(self, data: Dataset) -> Models | None:
        """The final weights, and the exported program."""
        if self.last is None or self.last.epoch != self._hp.epochs:
            return None
        try:
            weights = self.last.model
            return Models(
                export.state_dict_bytes(weights),
                export.exported_bytes(self._hp.model, weights, data.mean, data.std),
            )
        except Exception:
            log.exception("job %s: its final model could not be made", self._job_id)
            return None

    async def store_final(self, data: Dataset) -> None:
        """Once trained: make the final models and the last epoch's checkpoint (in a thread),
        then put all three at once, each model tried 3 times; a failure is a warning."""
        final = self._final

        def make() -> tuple[Models | None, bytes | None]:
            encoded = None
            if final is not None:
                try:
                    encoded = checkpoints.encode(final)
                except Exception:
                    log.exception("job %s: its last checkpoint could not be made", self._job_id)
            return self._models(data), encoded

        models, encoded = await asyncio.to_thread(make)
        puts: list[Awaitable[object]] = [] if models is None else [
            self._put_model("state-dict", models.state_dict),
            self._put_model("exported", models.exported),
        ]  # fmt: skip
        if final is not None and encoded is not None:
            puts.append(self._save(final, encoded))
        await asyncio.gather(*puts)

    async def _put_model(self, format_name: str, data: bytes) -> None:
        name = streams.model_object(self._job_id, format_name)
        backoff = Backoff(first=0.5, cap=2.0)
        for attempt in range(1, MODEL_TRIES + 1):
            try:
                await self._store.put(name, data)
                return
            except Exception as error:
                if attempt == MODEL_TRIES or isinstance(error, NotFoundError):  # no bucket
                    log.warning("job %s: %s not stored: %r", self._job_id, name, error)
                    return
                log.warning("job %s: storing %s failed, retrying: %r", self._job_id, name, error)
                await backoff.wait()

    async def finish(self) -> None:
        """After the success: the run's epoch checkpoints below its final one go."""
        try:
            await self._store.finish(
                self._lineage, self._device_type, self._hp.epochs, self._job_id
            )
        except Exception as error:
            log.warning("job %s: its earlier checkpoints not deleted: %r", self._job_id, error)
