"""Facts about job records that the screens share."""

from __future__ import annotations

from tuner.v1 import job_pb2


def version(job: job_pb2.Job) -> tuple[int, int, int]:
    """Orders records of one job: a later run, then a later write, is newer."""
    return (job.run, job.update_time.seconds, job.update_time.nanos)


def supersedes(incoming: job_pb2.Job, current: job_pb2.Job) -> bool:
    """Whether `incoming` is at least as new as `current`.

    A submit or cancel answer can arrive after the events of what happened next (the trainer
    may start the job before the answer is read); such an answer must not move it back.
    """
    return version(incoming) >= version(current)
