"""Publishing to NATS: work to the job queue, state changes to the event stream, cancellations."""

from __future__ import annotations

import contextlib
import logging

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError

from store.documents import Document, job_from, now
from store.jobs import JobStore
from tuner.core import streams
from tuner.v1 import event_pb2

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, nc: Client, js: JetStreamContext, store: JobStore) -> None:
        self._nc = nc
        self._js = js
        self._store = store
        # (job, run) whose latest announcement NATS did not take; see announce_missed.
        self._unannounced: set[tuple[str, int]] = set()

    async def dispatch(self, doc: Document) -> None:
        """Queue the job's current run for a trainer; the message id makes a retry harmless."""
        job = job_from(doc)
        request = event_pb2.TrainRequest(
            job_id=job.id, run=job.run, hyperparameters=job.hyperparameters
        )
        ack = await self._js.publish(
            streams.JOBS_SUBJECT,
            request.SerializeToString(),
            stream=streams.JOBS_STREAM,
            headers={"Nats-Msg-Id": f"{job.id}.{job.run}"},
        )
        await self._store.set_dispatched(job.id, job.run, ack.seq)
        log.info("job %s run %d queued at sequence %d", job.id, job.run, ack.seq)

    async def announce(self, doc: Document) -> None:
        """Publish the state the job was just recorded in; a repeat of the same one is dropped."""
        job = job_from(doc)
        event = event_pb2.JobEvent(
            job_id=job.id,
            run=job.run,
            attempt=job.attempts,
            state_changed=event_pb2.StateChange(job=job),
        )
        event.time.FromDatetime(now())
        state = doc["state"]
        try:
            await self._js.publish(
                streams.events_subject(job.id, job.run),
                event.SerializeToString(),
                stream=streams.EVENTS_STREAM,
                headers={"Nats-Msg-Id": f"{job.id}.{job.run}.{job.attempts}.{state}"},
            )
        except Exception:
            self._unannounced.add((job.id, job.run))
            raise
        finally:
            await self.recorded(job.id)
        self._unannounced.discard((job.id, job.run))

    async def recorded(self, job_id: str) -> None:
        """Tell the sweep drivers the job's record changed; a lost notice costs a round."""
        with contextlib.suppress(Exception):
            await self._nc.publish(streams.recorded_subject(job_id), b"")

    async def announce_missed(self) -> None:
        """Announce again, as stored now, each job whose last announcement failed."""
        for job_id, run in sorted(self._unannounced):
            doc = await self._store.get(job_id)
            if doc is None or doc["run"] != run:
                self._unannounced.discard((job_id, run))
                continue
            await self.announce(doc)

    async def withdraw(self, doc: Document) -> None:
        """Tell a trainer that may hold a cancelled job to stop, and take it off the queue."""
        notice = event_pb2.JobCancellation(job_id=doc["_id"], run=doc["run"])
        await self._nc.publish(streams.cancel_subject(doc["_id"]), notice.SerializeToString())
        if doc.get("dispatch_sequence"):
            # Fails when a trainer took it already: the notice above stops that trainer.
            with contextlib.suppress(APIError):
                await self._js.delete_msg(streams.JOBS_STREAM, doc["dispatch_sequence"])
