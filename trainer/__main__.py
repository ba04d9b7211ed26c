"""python -m trainer: run one trainer with configuration from the environment."""

import asyncio
import os
import sys

from trainer.config import Config
from tuner.core.env import ConfigError, log_format, log_level
from tuner.core.logs import setup_logging

try:
    setup_logging(log_level(os.environ), log_format(os.environ))
    config = Config.from_env()
except ConfigError as error:
    sys.exit(f"trainer: {error}")
# Only now: importing torch takes seconds, and a bad setting should fail at once.
from trainer.main import main

try:
    code = asyncio.run(main(config))
except ConfigError as error:  # found at start: a port in use
    sys.exit(f"trainer: {error}")
sys.exit(code)
