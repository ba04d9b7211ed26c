"""One logging configuration for every service: secrets masked, the call's request id appended."""

import contextvars
import logging
import re

SECRETS = [
    (re.compile(r"(\w+://)[^/@\s:]+:[^/@\s]+@"), r"\1***:***@"),  # passwords in URIs
    (re.compile(r"(?i)(bearer\s+)\S+"), r"\1***"),
]


class MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for pattern, replacement in SECRETS:
            message = pattern.sub(replacement, message)
        record.msg, record.args = message, None
        return True


# The id of the gRPC call being served, set by the scheduler for the whole call.
current_request: contextvars.ContextVar[str] = contextvars.ContextVar("current_request")


class RequestIds(logging.Filter):
    """Appends ` [request ID]` to each record written while a call is served."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = current_request.get(None)
        if request is not None and not hasattr(record, "request"):  # once, whatever the handlers
            record.msg, record.args = f"{record.getMessage()} [request {request}]", None
            record.request = request
        return True


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskSecrets())
        handler.addFilter(RequestIds())
    # The NATS client logs each reconnect attempt's traceback; our callbacks say it in a line.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
