"""One logging configuration for every service."""

import logging
import os


def setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("TUNER_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The NATS client logs each reconnect attempt's traceback; our callbacks say it in a line.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
