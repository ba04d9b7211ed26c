"""python -m scheduler: run the scheduler with configuration from the environment."""

import asyncio
import logging

from scheduler.config import Config
from scheduler.main import main
from tuner.logs import setup_logging

setup_logging()
logging.getLogger(__name__).debug("starting")
asyncio.run(main(Config.from_env()))
