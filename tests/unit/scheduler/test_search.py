"""Search strategies and pruning rules, as pure functions of a spec and the trials so far."""

from __future__ import annotations

import re

import pytest

from scheduler.sweeps.pruning import asha_stops, median_stops, rungs, should_stop
from scheduler.sweeps.search import (
    Finished,
    budget,
    check_spec,
    cost,
    grid,
    next_point,
    random_point,
)
from tuner.core.hyperparameters import FieldError, normalized
from tuner.sweep_spec import SpecError, parse
from tuner.v1 import job_pb2, sweep_pb2

SPACE = """
space:
  epochs: [2]
  learning_rate: {min: 0.0001, max: 0.1, log: true, grid_points: 4}
  batch_size: [64, 128]
  models: [mlp, cnn]
  optimizers: [adam]
"""


def spec(strategy: str, trials: int = 10, extra: str = "") -> sweep_pb2.SweepSpec:
    return parse(f"strategy: {strategy}\nmax_trials: {trials}\nsampler_seed: 3\n{extra}{SPACE}")


def asked(
    s: sweep_pb2.SweepSpec, count: int, before: list[job_pb2.Hyperparameters] | None = None
) -> list[job_pb2.Hyperparameters]:
    """`count` trials asked one after another, as a driver does, after the trials `before`."""
    points = list(before or [])
    for number in range(len(points), len(points) + count):
        points.append(next_point(s, number, [], points))
    return points[len(before or []) :]


def keys(points: list[job_pb2.Hyperparameters]) -> list[bytes]:
    return sorted(normalized(p).SerializeToString() for p in points)


def test_a_grid_is_every_combination_once() -> None:
    points = grid(spec("grid").space)
    assert len(points) == 4 * 2 * 2
    rates = sorted({p.learning_rate for p in points})
    assert rates == [0.0001, 0.001, 0.01, 0.1]
    assert len({p.SerializeToString() for p in points}) == len(points)
    assert budget(spec("grid", trials=100)) == 16
    assert budget(spec("grid", trials=5)) == 5
    assert keys(asked(spec("grid", trials=100), 16)) == keys(points)


def test_random_points_stay_in_the_space_and_repeat_for_a_seed() -> None:
    s = spec("random", trials=50)
    points = asked(s, 50)
    assert points == asked(s, 50), "a restart draws the same"
    assert keys(points) == keys([random_point(s, n) for n in range(50)])
    for p in points:
        normalized(p)
        assert 0.0001 <= p.learning_rate <= 0.1
        assert p.batch_size in (64, 128) and p.model in (job_pb2.MODEL_MLP, job_pb2.MODEL_CNN)
    assert len({p.learning_rate for p in points}) == 50


@pytest.mark.parametrize("strategy", ["grid", "random"])
def test_the_costliest_trials_go_first_and_a_sweep_begun_in_draw_order_runs_the_rest(
    strategy: str,
) -> None:
    s = spec(strategy, trials=12)
    drawn = grid(s.space)[:12] if strategy == "grid" else [random_point(s, n) for n in range(12)]
    points = asked(s, 12)
    assert [cost(p) for p in points] == sorted((cost(p) for p in drawn), reverse=True)
    assert points[0].model == job_pb2.MODEL_CNN and points[0].batch_size == 64
    assert keys(points) == keys(drawn)
    # Five trials stored in draw order (an older scheduler): the rest are the other seven.
    rest = asked(s, 7, before=drawn[:5])
    assert keys(drawn[:5] + rest) == keys(drawn)
    with pytest.raises(IndexError):
        next_point(s, 12, [Finished(p, 0.9) for p in points])


def test_tpe_learns_from_finished_trials() -> None:
    s = spec("tpe")
    first = [next_point(s, i, []) for i in range(10)]  # TPE's first are random draws
    # a toy objective: lower learning rates are better
    finished = [Finished(p, 1 - p.learning_rate * 5) for p in first]
    suggested = [next_point(s, 10 + i, finished) for i in range(10)]
    for p in suggested:
        normalized(p)
        assert 0.0001 <= p.learning_rate <= 0.1
    assert next_point(s, 10, finished) == suggested[0], "deterministic for the same trials"
    mean = sum(p.learning_rate for p in suggested) / 10
    assert mean < sum(p.learning_rate for p in first) / 10


def test_tpe_asked_beside_running_trials_does_not_repeat_them() -> None:
    """Four trials asked at once (parallelism 4) after twelve finished ones, in a space of
    24 points: told of the running ones, TPE spreads out; not told, it asks one point 4x."""
    s = parse(
        "strategy: tpe\nmax_trials: 40\nsampler_seed: 3\nspace: {epochs: [1], "
        "learning_rate: [0.001, 0.01], batch_size: [64, 128, 256], models: [mlp, cnn], "
        "optimizers: [adam, sgd]}"
    )
    first = [next_point(s, i, []) for i in range(12)]

    def accuracy(p: job_pb2.Hyperparameters) -> float:
        return 0.5 + 0.2 * (p.batch_size == 64) + 0.1 * (p.learning_rate == 0.001)

    finished = [Finished(p, accuracy(p)) for p in first]
    told: list[job_pb2.Hyperparameters] = []
    for number in range(12, 16):
        told.append(next_point(s, number, finished, pending=told))
    blind = [next_point(s, number, finished) for number in range(12, 16)]
    assert len({p.SerializeToString() for p in told}) == 4
    assert len({p.SerializeToString() for p in blind}) < 4, "the space no longer shows it"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("max_trials: 0\n" + SPACE, "spec.max_trials"),
        ("max_trials: 2\nparallelism: 101\n" + SPACE, "spec.parallelism"),
        ("max_trials: 2\n" + SPACE.replace("[2]", "[0]"), "spec.space.epochs"),
        ("max_trials: 2\n" + SPACE.replace("max: 0.1", "max: 11"), "spec.space.learning_rate"),
        ("max_trials: 2\n" + SPACE.replace("min: 0.0001", "min: 0"), "spec.space.learning_rate"),
        ("max_trials: 2\n" + SPACE.replace("[64, 128]", "[0]"), "spec.space.batch_size"),
    ],
)
def test_a_bad_spec_names_its_field(text: str, field: str) -> None:
    with pytest.raises(FieldError) as raised:
        check_spec(parse(text))
    assert raised.value.field == field


def test_spec_files_are_checked_as_they_are_read() -> None:
    with pytest.raises(
        SpecError, match=re.escape("strategy: 'bayes' is not one of grid, random, tpe")
    ):
        parse("strategy: bayes\nspace: {}")
    with pytest.raises(SpecError, match=re.escape("space.models: 'rnn' is not one of cnn, mlp")):
        parse("space: {models: [rnn]}")
    with pytest.raises(SpecError, match="unknown keys: budget"):
        parse("budget: 3\nspace: {}")


def test_asha_keeps_the_top_of_each_rung() -> None:
    assert rungs(1, 3, 9) == [1, 3]
    assert rungs(1, 2, 9) == [1, 2, 4, 8]
    assert not asha_stops([0.5], [], [1, 3], 3), "the first to reach a rung goes on"
    assert asha_stops([0.5], [[0.9, 0.95]], [1, 3], 3)
    assert not asha_stops([0.95], [[0.9, 0.95]], [1, 3], 3)
    others = [[0.9], [0.8], [0.7], [0.6], [0.5]]
    assert not asha_stops([0.85], others, [1, 3], 3), "top 2 of 6"
    assert asha_stops([0.75], others, [1, 3], 3)


def test_the_median_rule_needs_two_finished_trials() -> None:
    assert not median_stops([0.1], [[0.9, 0.95]], 1)
    assert median_stops([0.1], [[0.9, 0.95], [0.8, 0.9]], 1)
    assert not median_stops([0.95], [[0.9, 0.95], [0.8, 0.9]], 1)
    assert not median_stops([0.1], [[0.9], [0.8]], 2), "not before min_epochs"


def test_no_rule_and_a_finished_curve_never_stop() -> None:
    none = spec("random", extra="early_stopping: none\n")
    assert not should_stop(none, [0.1], 3, [[0.9, 0.9, 0.9]], [[0.9, 0.9, 0.9]] * 3)
    asha = spec("random", extra="early_stopping: asha\n")
    assert should_stop(asha, [0.1], 3, [[0.9, 0.9, 0.9]], [])
    assert not should_stop(asha, [0.1, 0.1, 0.1], 3, [[0.9, 0.9, 0.9]], [])
