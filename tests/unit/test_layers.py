"""Layers point one way: each file's imports, read with ast (nothing is imported), follow the rules.

Services (scheduler/, store/, trainer/) and the kernel (tuner/core/) never import client code;
only trainer/ imports torch; the dashboard never imports the services; the kernel imports nothing
above it. Imports inside functions and under TYPE_CHECKING count the same.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("tuner", "scheduler", "store", "trainer", "tui")
KERNEL = ("tuner.core", "tuner.v1")  # the shared kernel and the generated contracts
TORCH = ("torch", "torchvision")
SERVICES = ("scheduler", "store", "trainer")


@dataclass(frozen=True)
class Rule:
    name: str
    where: tuple[str, ...]  # the modules it applies to, by prefix
    banned: tuple[str, ...]  # what they may not import, by prefix
    exempt: tuple[str, ...] = ()  # modules under `where` it does not apply to


def under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def client_modules(root: Path) -> tuple[str, ...]:
    """Every module of tuner/ but the kernel and the contracts (a new one too), and tui."""
    names = {module_name(path, root) for path in (root / "tuner").rglob("*.py")}
    return (*sorted(n for n in names if n != "tuner" and not under(n, KERNEL)), "tui")


CLIENT = client_modules(REPO)
RULES = [
    Rule("services never import client code", (*SERVICES, "tuner.core"), CLIENT),
    Rule("only the trainer imports torch", PACKAGES, TORCH, exempt=("trainer",)),
    Rule("the dashboard never imports the services", ("tui",), SERVICES),
    Rule("the kernel imports nothing above it", ("tuner.core",), (*SERVICES, "tui")),
]


def imported(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the file; `from a import b` yields a and a.b."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def sources(root: Path) -> list[Path]:
    return sorted(p for package in PACKAGES for p in (root / package).rglob("*.py"))


def violations(root: Path, rule: Rule) -> list[str]:
    found = []
    for path in sources(root):
        module = module_name(path, root)
        if not under(module, rule.where) or under(module, rule.exempt):
            continue
        for line, name in imported(path, root):
            if under(name, rule.banned):
                found.append(f"{path.relative_to(root)}:{line} imports {name}")
    return sorted(set(found))


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_the_layers_point_one_way(rule: Rule) -> None:
    assert violations(REPO, rule) == [], rule.name


def test_every_package_is_read() -> None:
    files = sources(REPO)
    for package in PACKAGES:
        assert (REPO / package / "__init__.py") in files
    trainer = {
        name for path in files if path.parts[-2] == "trainer" for _, name in imported(path, REPO)
    }
    assert "torch" in trainer, "the parser sees the trainer's own torch import"


def test_every_client_module_is_banned_from_the_services() -> None:
    assert {"tuner.cli", "tuner.client", "tuner.output", "tuner.up", "tui"} <= set(CLIENT)
    assert not [name for name in CLIENT if under(name, KERNEL)]


def test_a_violation_is_caught(tmp_path: Path) -> None:
    """The rules on a made-up tree with one breach of each, in the forms imports take."""
    files = {
        "scheduler/__init__.py": "",
        "scheduler/jobs.py": "import tuner.cli\n",
        "store/jobs.py": "from tuner import stack\n",
        "trainer/worker.py": "import torch\ndef f():\n    from tui.app import TunerApp\n",
        "tuner/__init__.py": "",
        "tuner/core/__init__.py": "",
        "tuner/core/streams.py": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from scheduler.jobs import Jobs\n",
        "tuner/core/env.py": "from .. import sweep_spec\n",
        "tui/app.py": "import torchvision.datasets\nfrom store.jobs import JobStore\n",
        "tuner/client.py": "import tuner.stack\n",  # a client may use the launcher
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    assert {rule.name: violations(tmp_path, rule) for rule in RULES} == {
        "services never import client code": [
            "scheduler/jobs.py:1 imports tuner.cli",
            "store/jobs.py:1 imports tuner.stack",
            "trainer/worker.py:3 imports tui.app",
            "trainer/worker.py:3 imports tui.app.TunerApp",
            "tuner/core/env.py:1 imports tuner.sweep_spec",
        ],
        "only the trainer imports torch": [
            "tui/app.py:1 imports torchvision.datasets",
        ],
        "the dashboard never imports the services": [
            "tui/app.py:2 imports store.jobs",
            "tui/app.py:2 imports store.jobs.JobStore",
        ],
        "the kernel imports nothing above it": [
            "tuner/core/streams.py:3 imports scheduler.jobs",
            "tuner/core/streams.py:3 imports scheduler.jobs.Jobs",
        ],
    }


@pytest.mark.parametrize(
    ("module", "banned"),
    [
        ("tui.app", (*TORCH, *SERVICES)),
        ("tuner.cli", (*TORCH, *SERVICES)),
        ("scheduler.main", (*TORCH, "trainer", *CLIENT)),
    ],
)
def test_what_a_process_loads(module: str, banned: tuple[str, ...]) -> None:
    """The same rules at run time, through every import of every library on the way."""
    code = (
        f"import sys, {module}\n"
        f"banned = {banned!r}\n"
        "loaded = sorted(m for m in sys.modules if any(m == b or m.startswith(b + '.') "
        "for b in banned))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
