"""Trainer processes and checkpoints: a job whose trainer is killed with -9 goes on from its last
checkpoint on another trainer, a longer job of its configuration trains only the extra epochs,
and both end bit for bit as uninterrupted runs; the exported model runs without this project.
"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.support.hyperparameters import mlp
from tests.support.processes import without_tuner_settings
from tests.support.servers import Nats, fresh_streams
from trainer import checkpoints, data, training
from tuner.core import streams
from tuner.core.hyperparameters import canonical_key, job_id, lineage, normalized
from tuner.stack import Stack
from tuner.v1 import event_pb2, job_pb2

SEED = 1401
CPU = torch.device("cpu")


class Heard:
    """Every job event published while the test runs, decoded."""

    def __init__(self) -> None:
        self.events: list[event_pb2.JobEvent] = []

    async def on_message(self, msg: object) -> None:
        self.events.append(event_pb2.JobEvent.FromString(msg.data))  # type: ignore[attr-defined]

    async def wait(
        self, what: str, matches: Callable[[event_pb2.JobEvent], bool], timeout: float = 240
    ) -> event_pb2.JobEvent:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if matches(event):
                    return event
            assert time.monotonic() < deadline, f"no {what} in {len(self.events)} events"
            await asyncio.sleep(0.05)


def straight(hp: job_pb2.Hyperparameters, data_dir: Path) -> dict[int, training.State]:
    """The uninterrupted run in this process: its state after each epoch, tensors copied."""
    states: dict[int, training.State] = {}

    def on_state(state: training.State) -> None:
        model = {k: v.detach().clone() for k, v in state.model.items()}
        states[state.epoch] = training.State(
            state.epoch, model, {}, state.rng, None, state.generator, state.epochs
        )

    dataset = data.load(hp.dataset, data_dir, CPU)
    training.train(hp, dataset, CPU, lambda _: None, lambda _: None, lambda: False,
                   on_state=on_state)  # fmt: skip
    return states


async def publish(nats: Nats, hp: job_pb2.Hyperparameters, run: int = 1) -> str:
    job = job_id(canonical_key(normalized(hp)))
    request = event_pb2.TrainRequest(job_id=job, run=run, hyperparameters=hp)
    await nats.js.publish(
        streams.JOBS_SUBJECT, request.SerializeToString(), stream=streams.JOBS_STREAM
    )
    return job


def history(event: event_pb2.JobEvent) -> list[tuple[int, int, bool]]:
    return [(m.epoch, m.attempt, m.reused) for m in event.epochs]


async def stored_weights(store: checkpoints.Store, job: str) -> dict[str, torch.Tensor]:
    raw = await store.get(streams.model_object(job, "state-dict"))
    assert raw is not None, f"no state dict of {job}"
    weights: dict[str, torch.Tensor] = torch.load(io.BytesIO(raw), weights_only=True)
    return weights


def assert_equal_weights(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name


EXPORTED_ACCURACY = textwrap.dedent(
    """
    import sys
    import torch
    from torchvision import datasets

    torch.set_num_threads(1)
    program = torch.export.load(sys.argv[1]).module()
    test = datasets.MNIST(sys.argv[2], train=False, download=False)
    images = test.data.float().div_(255).unsqueeze(1)  # [0, 1], (N, 1, 28, 28)
    correct = 0
    with torch.inference_mode():
        for part, labels in zip(torch.split(images, 4096), torch.split(test.targets, 4096)):
            output = program(part)
            assert output.shape == (len(part), 10)
            correct += int((output.argmax(dim=1) == labels).sum())
    mine = [m for m in sys.modules if m.split(".")[0] in ("tuner", "trainer", "scheduler")]
    assert not mine, mine
    print(repr(correct / len(test)))
    """
)


@pytest.mark.slow
async def test_a_killed_trainers_job_resumes_and_a_longer_one_reuses_its_epochs(
    nats_url: str, data_dir: Path, tmp_path: Path
) -> None:
    nc = await streams.connect(nats_url, "test")
    try:
        await killed_resumed_and_extended(Nats(nc, nc.jetstream()), nats_url, data_dir, tmp_path)
    finally:
        await nc.close()


async def killed_resumed_and_extended(
    nats: Nats, nats_url: str, data_dir: Path, tmp_path: Path
) -> None:
    await fresh_streams(nats.js, streams.QueuePolicy(ack_wait_seconds=3))
    heard = Heard()
    await nats.nc.subscribe("tuner.events.>", cb=heard.on_message)
    stack = Stack(tmp_path, env=without_tuner_settings())
    stack.env.update(
        TUNER_NATS_URL=nats_url,
        TUNER_DATA_DIR=str(data_dir),
        TUNER_DEVICE="cpu",
        TUNER_ACK_WAIT_SECONDS="3",
    )
    hp3, hp4 = mlp(SEED, epochs=3, batch_size=128), mlp(SEED, epochs=4, batch_size=128)
    reference = asyncio.create_task(asyncio.to_thread(straight, hp4, data_dir))
    store = checkpoints.Store(nats.nc, nats.js)
    try:
        job3 = await publish(nats, hp3)
        first = stack.start_trainer(1, threads=1)
        await heard.wait(
            "first epoch",
            lambda e: e.job_id == job3 and e.HasField("epoch_completed") and e.attempt == 1,
        )
        first.send_signal(signal.SIGKILL)  # epoch 1 reported, so its checkpoint is stored
        first.wait()
        stack.start_trainer(2, threads=1)

        done3 = await heard.wait("success", lambda e: e.job_id == job3 and e.HasField("succeeded"))
        assert done3.attempt == 2
        assert history(done3) == [(1, 1, False), (2, 2, False), (3, 2, False)]
        assert "continuing after epoch 1 of 3" in stack.log_path("trainer-2").read_text()
        expected = await reference
        assert done3.succeeded.test_accuracy == expected[3].epochs[-1].test_accuracy
        assert done3.succeeded.test_loss == expected[3].epochs[-1].test_loss
        assert_equal_weights(await stored_weights(store, job3), expected[3].model)
        # The run's earlier epoch checkpoints go (beside the next job); its final one stays.
        names = [streams.checkpoint_object(lineage(hp3), "cpu", e) for e in (1, 2, 3)]
        for _ in range(100):
            kept = [await store.get(name) is not None for name in names]
            if kept == [False, False, True]:
                break
            await asyncio.sleep(0.1)
        assert kept == [False, False, True]

        # A longer job of the same configuration: epochs 1-3 reused, only epoch 4 trained.
        job4 = await publish(nats, hp4)
        done4 = await heard.wait("success", lambda e: e.job_id == job4 and e.HasField("succeeded"))
        assert history(done4) == [(1, 0, True), (2, 0, True), (3, 0, True), (4, 1, False)]
        assert done4.succeeded.test_accuracy == expected[4].epochs[-1].test_accuracy
        assert done4.succeeded.test_loss == expected[4].epochs[-1].test_loss
        assert_equal_weights(await stored_weights(store, job4), expected[4].model)

        # The first job again (a new run): complete in its checkpoint, nothing is trained.
        await publish(nats, hp3, run=2)
        again = await heard.wait(
            "success", lambda e: e.job_id == job3 and e.run == 2 and e.HasField("succeeded")
        )
        assert history(again) == [(1, 0, True), (2, 0, True), (3, 0, True)]
        assert again.succeeded.test_accuracy == done3.succeeded.test_accuracy
        assert again.succeeded.test_loss == done3.succeeded.test_loss
        assert not [e for e in heard.events if e.run == 2 and e.HasField("progress")]

        # The exported program, in a Python that imports only torch (and torchvision's reader).
        exported = await store.get(streams.model_object(job4, "exported"))
        assert exported is not None
        (tmp_path / "model.pt2").write_bytes(exported)
        checked = subprocess.run(
            [sys.executable, "-I", "-c", EXPORTED_ACCURACY, str(tmp_path / "model.pt2"),
             str(data_dir)],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
            env=without_tuner_settings(),
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        assert json.loads(checked.stdout.strip()) == done4.succeeded.test_accuracy
    finally:
        stack.stop()
        if not reference.done():
            await asyncio.wait([reference])
