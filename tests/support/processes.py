"""Running a service as its own process, the way an operator does, with a chosen environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

from tests.support.stack import REPO


def without_tuner_settings() -> dict[str, str]:
    """This process's environment less every TUNER_ variable, so only a test's own apply."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}


def run_module(
    module: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m module` with only these TUNER_ variables set; its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**without_tuner_settings(), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
