"""python -m scheduler: run the scheduler with configuration from the environment."""

import asyncio
import os
import sys

from scheduler.config import Config
from scheduler.main import main
from tuner.core.env import ConfigError, log_format, log_level
from tuner.core.logs import setup_logging

try:
    setup_logging(log_level(os.environ), log_format(os.environ))
    config = Config.from_env()
except ConfigError as error:
    sys.exit(f"scheduler: {error}")
try:
    code = asyncio.run(main(config))
except ConfigError as error:  # found at start: a port in use
    sys.exit(f"scheduler: {error}")
sys.exit(code)
