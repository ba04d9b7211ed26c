"""Job documents as stored in MongoDB, and their conversion to and from protobuf."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from tuner.core import states
from tuner.core.hyperparameters import DATASETS, MODELS, OPTIMIZERS, lineage, named
from tuner.v1 import job_pb2

Document = dict[str, Any]


def now() -> datetime:
    # MongoDB keeps milliseconds; rounding here makes a document read back equal to the one written.
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _seconds(d: Duration) -> float:
    return d.ToNanoseconds() / 1e9


def _duration(seconds: float) -> Duration:
    # Set from the timedelta's parts, rounded to microseconds as FromTimedelta rounded them:
    # the well-known types' From* methods took half the time of converting a job (RESULTS.md,
    # 2026-12-07 15:30).
    d = timedelta(seconds=seconds)
    if d.days < 0:  # Duration's seconds and nanos take the sign together
        out = Duration()
        out.FromTimedelta(d)
        return out
    return Duration(seconds=d.days * 86_400 + d.seconds, nanos=d.microseconds * 1000)


_EPOCH = datetime(1970, 1, 1)


def timestamp(value: datetime) -> Timestamp:
    """As Timestamp.FromDatetime, for a datetime read back from MongoDB (naive, in UTC) or an
    aware one."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    since = value - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


def timestamps(doc: Document, fields: tuple[str, ...]) -> dict[str, Timestamp]:
    """The document's times among `fields` that are set, by field, for a message's constructor."""
    return {f: timestamp(t) for f in fields if (t := doc.get(f)) is not None}


def hyperparameters_doc(hp: job_pb2.Hyperparameters) -> Document:
    return dict(named(hp))


def hyperparameters_from(doc: Document) -> job_pb2.Hyperparameters:
    return job_pb2.Hyperparameters(
        epochs=doc["epochs"],
        learning_rate=doc["learning_rate"],
        batch_size=doc["batch_size"],
        dataset=DATASETS[doc["dataset"]],
        model=MODELS[doc["model"]],
        optimizer=OPTIMIZERS[doc["optimizer"]],
        seed=doc["seed"],
    )


def epoch_doc(m: job_pb2.EpochMetrics) -> Document:
    return {
        "epoch": m.epoch,
        "train_loss": m.train_loss,
        "test_loss": m.test_loss,
        "test_accuracy": m.test_accuracy,
        "training_seconds": _seconds(m.training_duration),
        "evaluation_seconds": _seconds(m.evaluation_duration),
        "attempt": m.attempt,
        "reused": m.reused,
    }


def epoch_from(m: Document) -> job_pb2.EpochMetrics:
    return job_pb2.EpochMetrics(
        epoch=m["epoch"],
        train_loss=m["train_loss"],
        test_loss=m["test_loss"],
        test_accuracy=m["test_accuracy"],
        training_duration=_duration(m["training_seconds"]),
        evaluation_duration=_duration(m["evaluation_seconds"]),
        attempt=m.get("attempt", 0),
        reused=m.get("reused", False),
    )


def result_doc(r: job_pb2.Result) -> Document:
    return {
        "test_accuracy": r.test_accuracy,
        "test_loss": r.test_loss,
        "training_seconds": _seconds(r.training_duration),
        "evaluation_seconds": _seconds(r.evaluation_duration),
        "device": r.device,
    }


def new_job(
    job_id: str, key: str, hp: job_pb2.Hyperparameters, owner: str, reused_epochs: int = 0
) -> Document:
    """`reused_epochs`: the epochs it is expected to take from a shorter job of its lineage."""
    t = now()
    return {
        "_id": job_id,
        "key": key,
        "hyperparameters": hyperparameters_doc(hp),
        "lineage": lineage(hp),
        "reused_epochs": reused_epochs,
        "state": states.name(states.QUEUED),
        "owner": owner,
        "run": 1,
        "attempts": 0,
        "error": "",
        "trainer": "",
        "progress": None,
        "history": [],
        "result": None,
        "dispatch_sequence": 0,
        "create_time": t,
        "start_time": None,
        "end_time": None,
        "update_time": t,
        # Set by the model retention (scheduler/retention.py) once the job has SUCCEEDED.
        "model_review": None,
        "model_deleted": None,
    }


_JOB_TIMES = ("create_time", "start_time", "end_time", "update_time")


def job_from(doc: Document) -> job_pb2.Job:
    parts: dict[str, Any] = timestamps(doc, _JOB_TIMES)
    if progress := doc.get("progress"):
        parts["progress"] = job_pb2.Progress(**progress)
    if r := doc.get("result"):
        parts["result"] = job_pb2.Result(
            test_accuracy=r["test_accuracy"],
            test_loss=r["test_loss"],
            training_duration=_duration(r["training_seconds"]),
            evaluation_duration=_duration(r["evaluation_seconds"]),
            device=r["device"],
        )
    return job_pb2.Job(
        id=doc["_id"],
        hyperparameters=hyperparameters_from(doc["hyperparameters"]),
        state=states.of(doc),
        owner=doc["owner"],
        attempts=doc["attempts"],
        error=doc["error"],
        run=doc["run"],
        trainer=doc["trainer"],
        reused_epochs=doc.get("reused_epochs", 0),
        history=[epoch_from(m) for m in doc.get("history", [])],
        **parts,
    )
