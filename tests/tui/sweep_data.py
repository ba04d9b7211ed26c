"""Fixed sweeps for the sweep screens' offline tests and pictures."""

from __future__ import annotations

from tests.support.dashboard import ME, at
from tests.support.hyperparameters import mlp
from tuner.v1 import job_pb2, sweep_pb2

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
RUNNING = job_pb2.JOB_STATE_RUNNING
CANCELLED = job_pb2.JOB_STATE_CANCELLED
QUEUED = job_pb2.JOB_STATE_QUEUED


def trial(
    number: int,
    state: job_pb2.JobState,
    *,
    lr: float,
    batch: int = 64,
    accuracy: float = 0.0,
    epochs_done: int = 0,
    pruned: bool = False,
    reused: bool = False,
    optimizer: job_pb2.Optimizer = job_pb2.OPTIMIZER_ADAM,
) -> sweep_pb2.Trial:
    return sweep_pb2.Trial(
        number=number,
        job_id=f"{900 + number:032x}",
        hyperparameters=mlp(7, epochs=3, learning_rate=lr, batch_size=batch, optimizer=optimizer),
        state=state,
        test_accuracy=accuracy,
        epochs_done=epochs_done,
        pruned=pruned,
        reused=reused,
    )


def sweep(
    number: int,
    trials: list[sweep_pb2.Trial],
    *,
    name: str = "lr-search",
    state: sweep_pb2.SweepState = sweep_pb2.SWEEP_STATE_RUNNING,
    best: int = 0,
    owner: str = ME,
    max_trials: int = 6,
    updated: float = 60,
) -> sweep_pb2.Sweep:
    found = sweep_pb2.Sweep(
        id=f"5eeb{number:04x}c0ffee{0:018x}",
        spec=sweep_pb2.SweepSpec(
            name=name, strategy=sweep_pb2.SEARCH_STRATEGY_RANDOM, max_trials=max_trials
        ),
        state=state,
        owner=owner,
        best_trial=best,
        create_time=at(600 - number),
        update_time=at(updated),
    )
    found.trials.extend(trials)
    return found


TRIALS = [
    trial(1, SUCCEEDED, lr=0.001, accuracy=0.9712, epochs_done=3),
    trial(2, CANCELLED, lr=0.3, batch=128, accuracy=0.4133, epochs_done=1, pruned=True),
    trial(3, SUCCEEDED, lr=0.002, accuracy=0.9780, epochs_done=3, reused=True),
    trial(4, SUCCEEDED, lr=0.01, accuracy=0.9655, epochs_done=3, optimizer=job_pb2.OPTIMIZER_SGD),
    trial(5, RUNNING, lr=0.0005, batch=128, accuracy=0.9521, epochs_done=1),
    trial(6, QUEUED, lr=0.004),
]
RUNNING_SWEEP = sweep(1, TRIALS, best=3)
FINISHED_SWEEP = sweep(
    2,
    TRIALS[:2],
    name="first-try",
    state=sweep_pb2.SWEEP_STATE_SUCCEEDED,
    best=1,
    max_trials=2,
)
EMPTY_SWEEP = sweep(3, [], name="", owner="bob", max_trials=4)
