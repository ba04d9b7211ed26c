"""The dashboard is a pure gRPC client: it never loads torch or the trainer."""

from __future__ import annotations

import subprocess
import sys


def test_the_app_imports_neither_torch_nor_the_trainer() -> None:
    code = (
        "import sys, tui.app\n"
        "banned = ('torch', 'torchvision', 'trainer')\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in banned]\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
