"""One logging configuration for every service: secrets masked, the call's request id appended.

As text (the default), or as JSON, one object a line, for a log shipper.
"""

import contextvars
import json
import logging
import re
from datetime import UTC, datetime

SECRETS = [
    (re.compile(r"(\w+://)[^/@\s:]+:[^/@\s]+@"), r"\1***:***@"),  # passwords in URIs
    (re.compile(r"(?i)(bearer\s+)\S+"), r"\1***"),
]


def mask(text: str) -> str:
    for pattern, replacement in SECRETS:
        text = pattern.sub(replacement, text)
    return text


class MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask(record.getMessage()), None
        return True


# The id of the gRPC call being served, set by the scheduler for the whole call.
current_request: contextvars.ContextVar[str] = contextvars.ContextVar("current_request")


class RequestIds(logging.Filter):
    """Appends ` [request ID]` to each record written while a call is served (`append`),
    and keeps the id in `record.request` either way."""

    def __init__(self, append: bool = True) -> None:
        super().__init__()
        self._append = append

    def filter(self, record: logging.LogRecord) -> bool:
        request = current_request.get(None)
        if request is not None and not hasattr(record, "request"):  # once, whatever the handlers
            if self._append:
                record.msg, record.args = f"{record.getMessage()} [request {request}]", None
            record.request = request
        return True


# A job's id (32 hex digits) right after the word "job", as every line about a job says it.
JOB_IN_MESSAGE = re.compile(r"\bjob ([0-9a-f]{32})\b")


class JsonLines(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, and when known
    job_id (`extra={"job_id": ...}`, else the id after "job " in the message), request_id
    and the exception's traceback."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        job = getattr(record, "job_id", None)
        if job is None and (found := JOB_IN_MESSAGE.search(message)):
            job = found.group(1)
        if job is not None:
            line["job_id"] = str(job)
        request = getattr(record, "request", None)
        if request is not None:
            line["request_id"] = str(request)
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = mask(record.exc_text)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def prepare(handler: logging.Handler, format: str = "text") -> None:
    """Masks secrets and adds the request id in what `handler` writes; JSON lines if asked."""
    handler.addFilter(MaskSecrets())
    handler.addFilter(RequestIds(append=format != "json"))
    if format == "json":
        handler.setFormatter(JsonLines())


def setup_logging(level: int = logging.INFO, format: str = "text") -> None:
    """`format`: "text" (time level logger: message [request ID]) or "json" (`JsonLines`)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        prepare(handler, format)
    # The NATS client logs each reconnect attempt's traceback; our callbacks say it in a line.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
