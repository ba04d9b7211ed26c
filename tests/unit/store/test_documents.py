"""A stored job or sweep as the API sends it: times and durations as the well-known types'
own conversions make them, for documents as pymongo reads them back (naive times in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import bson
from google.protobuf.timestamp_pb2 import Timestamp

from store.documents import Document, epoch_doc, job_from, result_doc, timestamp
from store.sweeps import new_sweep, sweep_from
from tests.support.documents import job_doc
from tuner.core import states
from tuner.v1 import job_pb2, sweep_pb2


def read_back(doc: Document) -> Document:
    """The document as pymongo returns it: BSON keeps milliseconds, datetimes come back naive."""
    return bson.decode(bson.encode(doc))


def from_datetime(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def test_a_timestamp_is_the_one_from_datetime_makes() -> None:
    for value in (
        datetime(2026, 12, 7, 15, 4, 5, 123000),
        datetime(1969, 7, 20, 20, 17, 40, 500),  # before the epoch: nanos stay positive
        datetime(1970, 1, 1),
        datetime(2026, 12, 7, 15, 4, 5, 999999, tzinfo=UTC),
        datetime(2026, 12, 7, 20, 4, 5, 1000, tzinfo=timezone(timedelta(hours=5))),
    ):
        expected = from_datetime(value if value.tzinfo else value.replace(tzinfo=UTC))
        assert timestamp(value) == expected, value


def test_a_finished_job_reads_back_with_its_times_durations_and_epochs() -> None:
    doc = job_doc(1)
    training = 78551.0698865  # rounds to microseconds as a timedelta does
    metrics = job_pb2.EpochMetrics(epoch=1, train_loss=0.3, test_loss=0.2, test_accuracy=0.9)
    metrics.training_duration.FromTimedelta(timedelta(seconds=1.25))
    metrics.evaluation_duration.FromTimedelta(timedelta(microseconds=1))
    result = job_pb2.Result(test_accuracy=0.9, test_loss=0.2, device="cpu")
    result.training_duration.FromTimedelta(timedelta(seconds=training))
    t = datetime(2026, 12, 7, 15, 4, 5, 123000, tzinfo=UTC)
    doc.update(
        state=states.name(states.SUCCEEDED),
        attempts=1,
        history=[epoch_doc(metrics)],
        result=result_doc(result),
        start_time=t,
        end_time=t + timedelta(seconds=2),
    )
    job = job_from(read_back(doc))
    assert job.state == states.SUCCEEDED
    assert list(job.history) == [metrics]
    assert job.result.training_duration.ToTimedelta() == timedelta(seconds=training)
    assert job.result.evaluation_duration.ToNanoseconds() == 0
    assert job.start_time.ToDatetime(tzinfo=UTC) == t
    assert job.end_time.ToDatetime(tzinfo=UTC) == t + timedelta(seconds=2)
    assert job.create_time.ToDatetime(tzinfo=UTC) == doc["create_time"]
    assert not job.HasField("progress")


def test_a_queued_job_has_no_times_it_has_not_reached() -> None:
    job = job_from(read_back(job_doc(2)))
    assert job.state == states.QUEUED
    assert job.HasField("create_time") and job.HasField("update_time")
    assert not job.HasField("start_time") and not job.HasField("end_time")
    assert not job.HasField("result") and not job.history


def test_a_sweep_reads_back_with_its_times() -> None:
    doc = new_sweep("s1", sweep_pb2.SweepSpec(name="lr", max_trials=4), "alice")
    sweep = sweep_from(read_back(doc))
    assert sweep.spec.name == "lr" and sweep.spec.max_trials == 4
    assert sweep.create_time.ToDatetime(tzinfo=UTC) == doc["create_time"]
    assert not sweep.HasField("end_time") and sweep.best_trial == 0
