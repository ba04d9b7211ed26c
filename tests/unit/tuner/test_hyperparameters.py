"""The dedup key and the validation rules."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.hyperparameters import unfilled
from tuner.core.hyperparameters import FieldError, canonical_key, job_id, normalized
from tuner.v1 import job_pb2


def key(h: job_pb2.Hyperparameters) -> str:
    return canonical_key(normalized(h))


def test_defaults_are_filled_in() -> None:
    n = normalized(unfilled())
    assert n.dataset == job_pb2.DATASET_MNIST
    assert n.model == job_pb2.MODEL_CNN
    assert n.optimizer == job_pb2.OPTIMIZER_ADAM
    assert key(unfilled()) == key(
        unfilled(
            dataset=job_pb2.DATASET_MNIST, model=job_pb2.MODEL_CNN, optimizer=job_pb2.OPTIMIZER_ADAM
        )
    )


@pytest.mark.parametrize("spelling", ["0.1", "1e-1", "0.10", "1.0E-1", "0.1000000000000000000001"])
def test_float_spelling_gives_one_key(spelling: str) -> None:
    assert key(unfilled(learning_rate=float(spelling))) == key(unfilled(learning_rate=0.1))


def test_field_order_on_the_wire_does_not_matter() -> None:
    fields = [
        job_pb2.Hyperparameters(epochs=2),
        job_pb2.Hyperparameters(learning_rate=0.5),
        job_pb2.Hyperparameters(batch_size=32),
        job_pb2.Hyperparameters(seed=7),
    ]
    forward = b"".join(f.SerializeToString() for f in fields)
    backward = b"".join(f.SerializeToString() for f in reversed(fields))
    assert forward != backward
    a = job_pb2.Hyperparameters.FromString(forward)
    b = job_pb2.Hyperparameters.FromString(backward)
    assert key(a) == key(b)


configs = st.builds(
    lambda e, lr, bs, d, m, o, s: unfilled(
        epochs=e, learning_rate=lr, batch_size=bs, dataset=d, model=m, optimizer=o, seed=s
    ),
    st.integers(1, 100),
    st.floats(min_value=1e-12, max_value=10, allow_nan=False, exclude_min=False),
    st.integers(1, 8192),
    st.sampled_from([1, 2]),
    st.sampled_from([1, 2]),
    st.sampled_from([1, 2, 3]),
    st.integers(0, 2**63 - 1),
)


@given(configs, configs)
def test_different_configurations_never_share_a_key(
    a: job_pb2.Hyperparameters, b: job_pb2.Hyperparameters
) -> None:
    same = normalized(a) == normalized(b)
    assert (key(a) == key(b)) == same
    assert (job_id(key(a)) == job_id(key(b))) == same


@given(configs)
def test_key_survives_a_round_trip_through_the_wire(a: job_pb2.Hyperparameters) -> None:
    assert key(job_pb2.Hyperparameters.FromString(a.SerializeToString())) == key(a)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 101}, "epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"learning_rate": 10.0001}, "learning_rate"),
        ({"learning_rate": math.nan}, "learning_rate"),
        ({"learning_rate": math.inf}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 8193}, "batch_size"),
        ({"dataset": 9}, "dataset"),
        ({"model": 9}, "model"),
        ({"optimizer": 9}, "optimizer"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_values_name_the_field_and_the_rule(fields: dict[str, object], field: str) -> None:
    with pytest.raises(FieldError) as raised:
        normalized(unfilled(**fields))
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: must be")


@pytest.mark.parametrize(
    "fields",
    [
        {"epochs": 1},
        {"epochs": 100},
        {"learning_rate": 10.0},
        {"batch_size": 8192},
        {"seed": 2**63 - 1},
    ],
)
def test_boundaries_are_accepted(fields: dict[str, object]) -> None:
    normalized(unfilled(**fields))
