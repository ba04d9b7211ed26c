"""Log lines as text and as JSON: secrets masked, request and job ids where known."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tuner.core.logs import current_request, prepare

JOB = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def written(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose one handler is prepared in the format the test is parametrized with."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    prepare(handler, request.param)
    logger = logging.getLogger(f"tests.logs.{request.param}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("written", ["json"], indirect=True)
def test_json_lines_carry_time_level_logger_message_and_ids(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = written
    token = current_request.set("req-42")
    try:
        log.info("job %s run %d queued at sequence %d", JOB, 1, 7)
    finally:
        current_request.reset(token)
    log.warning("nats://alice:s3cret@nats:4222 went away; Bearer abcdefghijklmnop")
    log.info("a line about a job given as extra", extra={"job_id": "f" * 32})
    first, second, third = lines(out)
    assert first == {
        "time": first["time"],
        "level": "INFO",
        "logger": log.name,
        "message": f"job {JOB} run 1 queued at sequence 7",
        "job_id": JOB,
        "request_id": "req-42",
    }
    when = datetime.fromisoformat(first["time"])
    assert when.utcoffset() == timedelta(0)
    assert abs((datetime.now(when.tzinfo) - when).total_seconds()) < 60
    assert second["message"] == "nats://***:***@nats:4222 went away; Bearer ***"
    assert second["level"] == "WARNING"
    assert "job_id" not in second and "request_id" not in second
    assert third["job_id"] == "f" * 32


@pytest.mark.parametrize("written", ["json"], indirect=True)
def test_a_json_line_holds_the_traceback_masked(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = written
    try:
        raise RuntimeError("mongodb://root:hunter2@db/ is down")
    except RuntimeError:
        log.exception("recording failed")
    [line] = lines(out)
    assert line["message"] == "recording failed"
    assert "RuntimeError: mongodb://***:***@db/ is down" in line["exception"]
    assert "hunter2" not in out.getvalue()


@pytest.mark.parametrize("written", ["text"], indirect=True)
def test_text_lines_append_the_request_id(written: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = written
    token = current_request.set("req-7")
    try:
        log.info("job %s cancelled", JOB)
    finally:
        current_request.reset(token)
    assert out.getvalue() == f"job {JOB} cancelled [request req-7]\n"
