"""The messages workers and widgets post to the screens: plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from textual.message import Message

from tui.formatting import reason
from tuner.v1 import (
    analysis_pb2,
    event_pb2,
    job_pb2,
    sweep_pb2,
    trainer_pb2,
    tuner_service_pb2,
)


@dataclass
class EventReceived(Message):
    """A job event from the feed (every kind but progress)."""

    event: event_pb2.JobEvent


@dataclass
class ProgressReceived(Message):
    """Live progress of a job; a newer one for the same job replaces a queued older one."""

    event: event_pb2.JobEvent

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProgressReceived) and message.event.job_id == self.event.job_id


def event_message(event: event_pb2.JobEvent) -> EventReceived | ProgressReceived:
    """Progress may replace progress; every other event is delivered."""
    if event.WhichOneof("kind") == "progress":
        return ProgressReceived(event)
    return EventReceived(event)


@dataclass
class Connected(Message):
    """The scheduler answers again (or for the first time)."""


@dataclass
class ConnectionLost(Message):
    """A call or stream failed; the worker tries again after `retry_in` seconds."""

    reason: str
    retry_in: float


@dataclass
class ActiveJobsLoaded(Message):
    """My queued and running jobs, as the scheduler lists them."""

    jobs: list[job_pb2.Job]


@dataclass
class LeaderboardLoaded(Message):
    """The best jobs of one dataset (its command-line name)."""

    jobs: list[job_pb2.Job]
    dataset: str = "mnist"


@dataclass
class JobChanged(Message):
    """A job as its latest state change left it, from the events feed."""

    job: job_pb2.Job


@dataclass
class JobSubmitted(Message):
    """The scheduler accepted a submission (or answered with the existing job)."""

    response: tuner_service_pb2.SubmitJobResponse


@dataclass
class RequestFailed(Message):
    """A unary call failed: what was asked, the status code's name, and why."""

    action: str
    code: str
    details: str

    @classmethod
    def of(cls, action: str, error: grpc.aio.AioRpcError) -> RequestFailed:
        return cls(action, str(error.code().name), reason(error))


@dataclass
class OpenJob(Message):
    """Show this job's detail screen."""

    job: job_pb2.Job


@dataclass
class JobSnapshot(Message):
    """The job as the scheduler recorded it (a watch's first answer, or a state change)."""

    job: job_pb2.Job


@dataclass
class SweepsLoaded(Message):
    """My sweeps, as the scheduler lists them."""

    sweeps: list[sweep_pb2.Sweep]


@dataclass
class SweepSnapshot(Message):
    """The sweep as the scheduler recorded it (from a watch, or a cancel's answer)."""

    sweep: sweep_pb2.Sweep


@dataclass
class TrainersLoaded(Message):
    """The trainers the scheduler hears from now."""

    trainers: list[trainer_pb2.TrainerStatus]


@dataclass
class TrainerChanged(Message):
    """A trainer appeared, changed or left (from the feed); a newer one for the same trainer
    replaces a queued older one: applying either gives the same set."""

    change: trainer_pb2.TrainerChange

    def can_replace(self, message: Message) -> bool:
        return (
            isinstance(message, TrainerChanged)
            and message.change.trainer.name == self.change.trainer.name
        )


@dataclass
class AnalysisLoaded(Message):
    """The Analyze answer for the set a screen shows."""

    response: analysis_pb2.AnalyzeResponse


@dataclass
class CompareLoaded(Message):
    """The jobs to compare, as the scheduler has them now (with their epochs)."""

    jobs: list[job_pb2.Job]
