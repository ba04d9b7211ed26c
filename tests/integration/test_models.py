"""Reuse and final models on the whole stack: a longer job of a SUCCEEDED configuration trains
only its extra epochs, and `tuner model get` downloads what the trainer stored.

Seeds 6100-6199 are this file's: jobs are deduplicated across the whole session's stack.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.hyperparameters import mlp
from tests.support.jobs import wait_for
from tests.support.models import tuner_cli
from tests.support.stack import RunningStack
from tuner.client import TunerClient
from tuner.v1 import job_pb2

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED


async def test_a_longer_job_reuses_the_shorter_ones_epochs_and_both_models_download(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    async with TunerClient(running_stack.address, "alice") as alice:
        short = await alice.submit(mlp(6101, epochs=1))
        assert short.reused_epochs == 0
        done = await wait_for(alice, short.job.id, SUCCEEDED)
        assert [(m.epoch, m.attempt, m.reused) for m in done.history] == [(1, 1, False)]

        longer = await alice.submit(mlp(6101, epochs=2))
        assert (longer.reused_epochs, longer.deduplicated) == (1, False)
        assert longer.job.id != short.job.id, "a job of its own"
        trained = await wait_for(alice, longer.job.id, SUCCEEDED)

    assert trained.reused_epochs == 1
    assert [(m.epoch, m.attempt, m.reused) for m in trained.history] == [
        (1, 0, True),
        (2, 1, False),
    ]
    assert trained.history[0].test_accuracy == done.history[0].test_accuracy

    server = ("--server", running_stack.address, "--user", "bob")
    for job_id in (short.job.id, longer.job.id):
        for format_name, suffix in (("state-dict", ".pt"), ("exported", ".pt2")):
            ran = await tuner_cli(
                "model", "get", job_id, "--format", format_name, *server, cwd=tmp_path
            )
            assert ran.returncode == 0, ran.stderr
            saved = tmp_path / f"{job_id}{suffix}"
            assert f"to {saved.name} ({saved.stat().st_size} bytes)" in ran.stdout
    async with TunerClient(running_stack.address, "bob") as bob:
        responses = [r async for r in bob.model(longer.job.id)]
    header = responses[0].header
    data = (tmp_path / f"{longer.job.id}.pt").read_bytes()
    assert (header.size, header.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert data[:2] == b"PK", "torch.save's zip format"
