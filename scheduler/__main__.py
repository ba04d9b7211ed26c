"""python -m scheduler: run the scheduler with configuration from the environment."""

import asyncio
import sys

from scheduler.auth import ConfigError
from scheduler.config import Config
from scheduler.main import main
from tuner.logs import setup_logging

setup_logging()
try:
    config = Config.from_env()
except ConfigError as error:
    sys.exit(f"scheduler: {error}")
asyncio.run(main(config))
