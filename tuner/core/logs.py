"""One logging configuration for every service; secrets are masked before anything is written."""

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


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskSecrets())
    # The NATS client logs each reconnect attempt's traceback; our callbacks say it in a line.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
