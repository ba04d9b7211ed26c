"""ListJobs' page tokens: what the server issues reads back; anything else is refused."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.service import page_token, parse_page_token
from store.documents import now

JOB = "0123456789abcdef0123456789abcdef"


def encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "created",
    [
        now(),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 27, 14, 30, 0, 123000, tzinfo=UTC),
        datetime(2100, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ],
    ids=["now", "epoch", "millis", "2100"],
)
def test_a_token_reads_back_as_its_cursor(created: datetime) -> None:
    token = page_token({"create_time": created, "_id": JOB})
    assert parse_page_token(token) == (created, JOB)
    assert token.isascii() and " " not in token


def test_a_token_keeps_milliseconds_as_mongodb_does() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    cursor, _ = parse_page_token(page_token({"create_time": created, "_id": JOB}))
    assert cursor == created - timedelta(microseconds=901)


GARBAGE = {
    "empty": "",
    "not base64": "not-a-token!",
    "padding only": "====",
    "no separator": encoded(b"1700000000000" + JOB.encode()),
    "three parts": encoded(f"1:2:{JOB}".encode()),
    "not utf-8": encoded(b"\xff\xfe:" + JOB.encode()),
    "not a number": encoded(f"soon:{JOB}".encode()),
    "a float": encoded(f"1.5:{JOB}".encode()),
    "short id": encoded(b"1700000000000:" + JOB[:31].encode()),
    "upper-case id": encoded(f"1700000000000:{JOB.upper()}".encode()),
    "not hex": encoded(f"1700000000000:{'g' * 32}".encode()),
    "an injection": encoded(b'1700000000000:{"$gt": ""}'),
}


@pytest.mark.parametrize("token", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_and_forged_tokens_raise_value_error(token: str) -> None:
    with pytest.raises(ValueError):
        parse_page_token(token)


@pytest.mark.parametrize("millis", ["99999999999999999999", "-99999999999999999999"])
def test_a_forged_time_out_of_range_raises_value_error(millis: str) -> None:
    with pytest.raises(ValueError):
        parse_page_token(encoded(f"{millis}:{JOB}".encode()))
