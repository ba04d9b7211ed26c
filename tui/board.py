"""What the message board says about a job's state: a kind (its CSS class) and a line."""

from __future__ import annotations

from textual.notifications import SeverityLevel

from tui import formatting
from tuner.v1 import job_pb2


def by(job: job_pb2.Job, me: str) -> str:
    return "" if job.owner == me else f" by {job.owner}"


def state_entry(job: job_pb2.Job, me: str) -> tuple[str, str]:
    """The entry for a transition the scheduler recorded; the outcome first, for narrow screens."""
    what = f"{formatting.short(job.hyperparameters)} e={job.hyperparameters.epochs}{by(job, me)}"
    if job.state == job_pb2.JOB_STATE_QUEUED:
        if job.attempts:
            return "requeued", f"requeued after attempt {job.attempts}: {what}"
        return "submitted", f"submitted {what}"
    if job.state == job_pb2.JOB_STATE_RUNNING:
        attempt = f" (attempt {job.attempts})" if job.attempts > 1 else ""
        where = f" on {job.trainer}" if job.trainer else ""
        return "started", f"started{where}{attempt}: {what}"
    if job.state == job_pb2.JOB_STATE_SUCCEEDED:
        return "succeeded", f"finished: {formatting.outcome(job)} · {what}"
    if job.state == job_pb2.JOB_STATE_FAILED:
        return "failed", f"failed: {job.error or 'no reason given'} · {what}"
    if job.state == job_pb2.JOB_STATE_CANCELLED:
        return "cancelled", f"cancelled: {job.error or 'no reason given'} · {what}"
    return "submitted", f"{formatting.state(job.state)}: {what}"


def existing_entry(job: job_pb2.Job) -> tuple[str, str]:
    """The entry for a submission the scheduler answered with the job it already had."""
    what = f"{formatting.short(job.hyperparameters)} e={job.hyperparameters.epochs}"
    if job.state == job_pb2.JOB_STATE_RUNNING and job.progress.total_epochs:
        now = f"running, epoch {job.progress.epoch}/{job.progress.total_epochs}"
    else:
        now = formatting.outcome(job)
    return "exists", f"already exists: {now} · {what}"


def toast(job: job_pb2.Job) -> tuple[str, str, SeverityLevel] | None:
    """(title, message, severity) for a job of mine that ended, None while it goes on."""
    what = formatting.full(job.hyperparameters)
    if job.state == job_pb2.JOB_STATE_SUCCEEDED:
        return "Job finished", f"{what}\n{formatting.outcome(job)}", "information"
    if job.state == job_pb2.JOB_STATE_FAILED:
        return "Job failed", f"{what}\n{job.error or 'no reason given'}", "error"
    if job.state == job_pb2.JOB_STATE_CANCELLED:
        return "Job cancelled", f"{what}\n{job.error}", "warning"
    return None
