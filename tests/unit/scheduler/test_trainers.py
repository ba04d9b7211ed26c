"""The live set of trainers: announcements in, silence and goodbyes out, garbage dropped."""

from __future__ import annotations

import logging

import pytest

from scheduler.trainers import Trainers
from tuner.core import streams
from tuner.v1 import trainer_pb2


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def announcement(name: str, job_id: str = "", goodbye: bool = False) -> bytes:
    status = trainer_pb2.TrainerStatus(name=name, device="cpu", job_id=job_id, goodbye=goodbye)
    return status.SerializeToString()


def test_a_trainer_is_listed_until_it_falls_silent_for_three_announcements() -> None:
    clock = Clock()
    trainers = Trainers(silence=6.0, clock=clock)
    trainers.heard("tuner.trainers.b", announcement("b"))
    trainers.heard("tuner.trainers.a", announcement("a", job_id="j" * 32))
    listed = trainers.live()
    assert [t.name for t in listed] == ["a", "b"]
    assert listed[0].job_id == "j" * 32
    assert listed[0].HasField("receive_time")
    clock.now += 5.0
    trainers.heard("tuner.trainers.a", announcement("a"))
    assert trainers.count() == 2
    clock.now += 1.5  # b silent 6.5 s, a 1.5 s
    assert [t.name for t in trainers.live()] == ["a"]
    assert trainers.live()[0].job_id == "", "the latest announcement wins"


def test_a_goodbye_removes_the_trainer_at_once() -> None:
    trainers = Trainers(clock=Clock())
    trainers.heard("tuner.trainers.a", announcement("a"))
    trainers.heard("tuner.trainers.a", announcement("a", goodbye=True))
    assert trainers.live() == []
    trainers.heard("tuner.trainers.z", announcement("z", goodbye=True))  # never seen: nothing
    assert trainers.live() == []


def test_an_announcement_that_does_not_decode_is_dropped_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trainers = Trainers(clock=Clock())
    with caplog.at_level(logging.WARNING, "scheduler.trainers"):
        trainers.heard("tuner.trainers.x", b"\xff\xff\xff not a protobuf")
        trainers.heard("tuner.trainers.y", announcement(""))
    assert trainers.live() == []
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "dropped a malformed trainer announcement on tuner.trainers.x",
        "dropped a trainer announcement without a name on tuner.trainers.y",
    ]


def test_a_trainer_name_makes_one_subject_token() -> None:
    assert streams.trainer_subject("trainer-1") == "tuner.trainers.trainer-1"
    assert streams.trainer_subject("host.example.com-12") == "tuner.trainers.host_example_com-12"
    assert streams.trainer_subject("a*b>c d") == "tuner.trainers.a_b_c_d"
