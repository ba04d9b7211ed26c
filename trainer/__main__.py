"""python -m trainer: run one trainer with configuration from the environment."""

import asyncio
import os
import sys

from trainer.config import Config
from trainer.main import main
from tuner.core.env import ConfigError, log_level
from tuner.core.logs import setup_logging

try:
    setup_logging(log_level(os.environ))
    config = Config.from_env()
except ConfigError as error:
    sys.exit(f"trainer: {error}")
sys.exit(asyncio.run(main(config)))
