"""A fixed 6-job grid (3 learning rates x 2 optimizers) as Analyze answers it, and jobs to
compare, for the Analysis and Compare screens' offline tests and pictures."""

from __future__ import annotations

from tests.support.dashboard import epoch, job
from tests.support.hyperparameters import mlp
from tuner.v1 import analysis_pb2, job_pb2

ADAM = job_pb2.OPTIMIZER_ADAM
SGD = job_pb2.OPTIMIZER_SGD
RATES = (0.0001, 0.001, 0.01)
# (optimizer, learning rate) -> test accuracy: adam best at 0.001, sgd at 0.01.
ACCURACY = {
    (ADAM, 0.0001): 0.9512,
    (ADAM, 0.001): 0.9781,
    (ADAM, 0.01): 0.9603,
    (SGD, 0.0001): 0.8814,
    (SGD, 0.001): 0.9235,
    (SGD, 0.01): 0.9652,
}
ONE_VALUE = "one value in the set"


def grid_points() -> list[analysis_pb2.Point]:
    points = []
    for number, ((optimizer, rate), accuracy) in enumerate(ACCURACY.items(), 1):
        points.append(
            analysis_pb2.Point(
                job_id=f"{number:02d}" + "7" * 30,
                hyperparameters=mlp(
                    7, epochs=3, learning_rate=rate, batch_size=64, optimizer=optimizer
                ),
                test_accuracy=accuracy,
                trial_number=number,
            )
        )
    return points


def grid() -> analysis_pb2.AnalyzeResponse:
    points = grid_points()
    best = max(points, key=lambda p: p.test_accuracy)
    importances = [
        analysis_pb2.Importance(name="learning_rate", value=0.61, defined=True),
        analysis_pb2.Importance(name="optimizer", value=0.39, defined=True),
        *(
            analysis_pb2.Importance(name=name, defined=False, reason=ONE_VALUE)
            for name in ("epochs", "batch_size", "dataset", "model", "seed")
        ),
    ]
    return analysis_pb2.AnalyzeResponse(
        count=len(points),
        best_job_id=best.job_id,
        best_test_accuracy=best.test_accuracy,
        importances=importances,
        points=points,
    )


def empty() -> analysis_pb2.AnalyzeResponse:
    return analysis_pb2.AnalyzeResponse(note="no SUCCEEDED job matches the filter")


SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED


def _named(found: job_pb2.Job, prefix: str) -> job_pb2.Job:
    """The job with an id that starts apart from the others' (as random ids do)."""
    found.id = prefix + found.id[len(prefix) :]
    return found


COMPARED = [
    _named(
        job(
            51,
            mlp(7, epochs=4, learning_rate=0.001),
            SUCCEEDED,
            accuracy=0.9781,
            training=48.0,
            history=[
                epoch(1, 0.4120, 0.1980, 0.9421),
                epoch(2, 0.1810, 0.1312, 0.9610),
                epoch(3, 0.1203, 0.0977, 0.9712),
                epoch(4, 0.0911, 0.0803, 0.9781),
            ],
        ),
        "a1c3e5",
    ),
    _named(
        job(
            52,
            mlp(7, epochs=4, learning_rate=0.01, optimizer=SGD),
            SUCCEEDED,
            accuracy=0.9652,
            training=44.1,
            owner="bob",
            history=[
                epoch(1, 0.6623, 0.3011, 0.9102),
                epoch(2, 0.2904, 0.2002, 0.9403),
                epoch(3, 0.2107, 0.1523, 0.9560),
                epoch(4, 0.1688, 0.1187, 0.9652),
            ],
        ),
        "b2d4f6",
    ),
    _named(
        job(
            53,
            mlp(7, epochs=4, learning_rate=0.0001, optimizer=SGD),
            SUCCEEDED,
            accuracy=0.8814,
            training=43.7,
            history=[
                epoch(1, 1.9820, 1.5011, 0.6712),
                epoch(2, 1.1033, 0.7420, 0.8190),
                epoch(3, 0.6541, 0.5102, 0.8603),
                epoch(4, 0.5010, 0.4233, 0.8814),
            ],
        ),
        "c3e5a7",
    ),
]
