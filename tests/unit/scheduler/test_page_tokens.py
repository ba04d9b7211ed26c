"""ListJobs' page tokens: what the server issues reads back; anything else is refused."""

from __future__ import annotations

import base64

import pytest

from scheduler.service import page_token, parse_page_token
from store import pages


def encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize("number", [1, 2, 51, 10**6, 10**17])
def test_a_token_reads_back_as_the_number_the_next_page_starts_below(number: int) -> None:
    token = page_token({pages.FIELD: number, "_id": "0123456789abcdef0123456789abcdef"})
    assert parse_page_token(token) == number
    assert token.isascii() and " " not in token


GARBAGE = {
    "empty": "",
    "not base64": "not-a-token!",
    "padding only": "====",
    "no separator": encoded(b"below12"),
    "three parts": encoded(b"below:1:2"),
    "not utf-8": encoded(b"\xff\xfe:12"),
    "another tag": encoded(b"above:12"),
    "not a number": encoded(b"below:soon"),
    "a float": encoded(b"below:1.5"),
    "zero": encoded(b"below:0"),
    "negative": encoded(b"below:-3"),
    "leading zero": encoded(b"below:012"),
    "too long": encoded(b"below:" + b"9" * 19),
    "an injection": encoded(b'below:{"$gt": ""}'),
    "a token of times before numbers": encoded(b"1700000000000:" + b"a" * 32),
}


@pytest.mark.parametrize("token", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_and_forged_tokens_raise_value_error(token: str) -> None:
    with pytest.raises(ValueError):
        parse_page_token(token)
