"""How trainers and waiting jobs read on the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tuner import trainer_view
from tuner.cli import queued_status
from tuner.status_cli import jobs_line, table, trainer_rows
from tuner.v1 import job_pb2, trainer_pb2, tuner_service_pb2

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def busy() -> trainer_pb2.TrainerStatus:
    status = trainer_pb2.TrainerStatus(
        name="trainer-1",
        device="cpu",
        job_id="0123456789abcdef" * 2,
        run=2,
        jobs_done=3,
        progress=job_pb2.Progress(epoch=2, total_epochs=3, step=1200, total_steps=2814),
    )
    status.receive_time.FromDatetime(NOW - timedelta(seconds=0.8))
    return status


def test_a_busy_an_idle_and_a_warming_trainer() -> None:
    idle = trainer_pb2.TrainerStatus(name="trainer-2", device="cuda:0", ready=True)
    warming = trainer_pb2.TrainerStatus(name="trainer-3", device="cpu", ready=False)
    rows = trainer_rows([busy(), idle, warming], NOW)
    assert rows == [
        (
            "trainer-1",
            "cpu",
            "busy",
            "0123456789ab run 2",
            "epoch 2/3 · step 1200/2814 (43%)",
            "3",
            "0.8 s ago",
        ),
        ("trainer-2", "cuda:0", "idle", "-", "-", "0", "-"),
        ("trainer-3", "cpu", "warming up", "-", "-", "0", "-"),
    ]
    assert [trainer_view.warming_up(t) for t in (busy(), idle, warming)] == [False, False, True]
    assert table(rows).splitlines()[0].split() == [
        "name", "device", "state", "job", "progress", "done", "last", "seen",
    ]  # fmt: skip


def test_a_queued_job_says_when_it_waits_for_a_trainer() -> None:
    queued = job_pb2.Job(state=job_pb2.JOB_STATE_QUEUED)
    assert queued_status(queued, 0) == "QUEUED · waiting for a trainer"
    assert queued_status(queued, 1) == "QUEUED"
    assert queued_status(queued, None) == "QUEUED", "unknown is not zero"
    running = job_pb2.Job(state=job_pb2.JOB_STATE_RUNNING)
    assert queued_status(running, 0) == "RUNNING"
    assert trainer_view.waiting_for_trainer(True, 0)


def test_job_counts_say_when_they_stopped_at_the_cap() -> None:
    response = tuner_service_pb2.GetStatusResponse()
    assert jobs_line(response) == "not counted (the database does not answer)"
    response.jobs.add(state=job_pb2.JOB_STATE_QUEUED, count=1000, at_least=True)
    response.jobs.add(state=job_pb2.JOB_STATE_RUNNING, count=2)
    assert jobs_line(response) == "1000+ queued, 2 running"
