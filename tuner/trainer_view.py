"""How a trainer reads to people, for the command line and the dashboard alike."""

from __future__ import annotations

from datetime import UTC, datetime

from tuner.v1 import trainer_pb2


def warming_up(trainer: trainer_pb2.TrainerStatus) -> bool:
    """Still loading its data at start: it takes no job until it is ready."""
    return not trainer.ready and not trainer.job_id


def state(trainer: trainer_pb2.TrainerStatus) -> str:
    if trainer.job_id:
        return "busy"
    return "warming up" if warming_up(trainer) else "idle"


def job(trainer: trainer_pb2.TrainerStatus) -> str:
    """The job's short id and run, or '-' when idle."""
    if not trainer.job_id:
        return "-"
    return f"{trainer.job_id[:12]} run {trainer.run}"


def progress(trainer: trainer_pb2.TrainerStatus) -> str:
    """'epoch 2/3 · step 1200/2814 (43%)', or '-' before the first progress or when idle."""
    p = trainer.progress
    if not trainer.job_id or not p.total_steps:
        return "-" if not trainer.job_id else "starting"
    percent = 100 * p.step / p.total_steps
    return f"epoch {p.epoch}/{p.total_epochs} · step {p.step}/{p.total_steps} ({percent:.0f}%)"


def last_seen(trainer: trainer_pb2.TrainerStatus, now: datetime | None = None) -> str:
    """'0.8 s ago', from when the scheduler last heard it."""
    if not trainer.HasField("receive_time"):
        return "-"
    now = now or datetime.now(UTC)
    ago = (now - trainer.receive_time.ToDatetime(tzinfo=UTC)).total_seconds()
    return f"{max(ago, 0.0):.1f} s ago"


def waiting_for_trainer(state_is_queued: bool, trainers: int | None) -> bool:
    """A queued job waits silently when no trainer is connected; None: not known."""
    return state_is_queued and trainers == 0


WAITING = "waiting for a trainer"
