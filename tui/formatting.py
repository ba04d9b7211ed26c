"""Short human texts for jobs, durations and times, shared by the screens and widgets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from tuner.core import states
from tuner.core.hyperparameters import DATASETS, MODELS, OPTIMIZERS, name_of
from tuner.v1 import job_pb2


def enum_name(names: Mapping[str, int], value: int) -> str:
    """The command-line name of an enum value, '?' for one this client does not know."""
    try:
        return name_of(dict(names), value)
    except KeyError:
        return "?"


def model(hp: job_pb2.Hyperparameters) -> str:
    return enum_name(MODELS, hp.model)


def optimizer(hp: job_pb2.Hyperparameters) -> str:
    return enum_name(OPTIMIZERS, hp.optimizer)


def dataset(hp: job_pb2.Hyperparameters) -> str:
    return enum_name(DATASETS, hp.dataset)


def short(hp: job_pb2.Hyperparameters) -> str:
    """'mlp/adam lr=0.001 bs=64 s=7', prefixed by the data set unless it is mnist."""
    text = f"{model(hp)}/{optimizer(hp)} lr={hp.learning_rate:g} bs={hp.batch_size} s={hp.seed}"
    return text if hp.dataset == job_pb2.DATASET_MNIST else f"{dataset(hp)} {text}"


def full(hp: job_pb2.Hyperparameters) -> str:
    """'mlp/adam mnist e=1 lr=0.001 bs=64 s=7'."""
    return (
        f"{model(hp)}/{optimizer(hp)} {dataset(hp)} e={hp.epochs} lr={hp.learning_rate:g} "
        f"bs={hp.batch_size} s={hp.seed}"
    )


def state(value: job_pb2.JobState) -> str:
    """'succeeded' for JOB_STATE_SUCCEEDED."""
    return states.name(value).lower()


def seconds(duration: Duration) -> float:
    return duration.ToNanoseconds() / 1e9


def clock_time(total: float) -> str:
    """A running time as a clock shows it: '0:07', '12:03', '1:02:03'."""
    whole = max(0, int(total))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def span(total: float) -> str:
    """A measured time: '0.84s', '12.3s', '2m05s', '1h02m'."""
    if total < 10:
        return f"{total:.2f}s"
    if total < 60:
        return f"{total:.1f}s"
    minutes, secs = divmod(int(total), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02}m"


def percent(fraction: float) -> str:
    """0.97312 as '97.31%'."""
    return f"{fraction * 100:.2f}%"


def outcome(job: job_pb2.Job) -> str:
    """What became of a job: its accuracy and training time, its reason, or its state."""
    if job.state == job_pb2.JOB_STATE_SUCCEEDED:
        return (
            f"accuracy {percent(job.result.test_accuracy)}, "
            f"training {span(seconds(job.result.training_duration))}"
        )
    if job.state in (job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED) and job.error:
        return f"{state(job.state)}: {job.error}"
    return state(job.state)


def moment(timestamp: Timestamp) -> datetime | None:
    """The timestamp as an aware datetime, None when unset."""
    if not timestamp.seconds and not timestamp.nanos:
        return None
    return timestamp.ToDatetime(tzinfo=UTC)


def time_of_day(timestamp: Timestamp, zone: tzinfo | None) -> str:
    """'14:03:27' in the given zone; blank when unset."""
    when = moment(timestamp)
    return when.astimezone(zone).strftime("%H:%M:%S") if when else "--:--:--"


def date_time(timestamp: Timestamp, zone: tzinfo | None) -> str:
    """'2026-11-27 14:03:27' in the given zone; '-' when unset."""
    when = moment(timestamp)
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if when else "-"


def reason(error: grpc.aio.AioRpcError) -> str:
    """Why a call failed: the server's details, else the status code ('unavailable')."""
    details = error.details() or ""
    if error.code() == grpc.StatusCode.UNAVAILABLE or not details:
        return str(error.code().name).lower().replace("_", " ")
    return details
