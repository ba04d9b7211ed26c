"""python -m trainer: run one trainer with configuration from the environment."""

import asyncio

from trainer.config import Config
from trainer.main import main
from tuner.logs import setup_logging

setup_logging()
asyncio.run(main(Config.from_env()))
