"""The deployment files, and the TUNER_* variables the code and the README name, for the tests."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"

# Every "TUNER_X" string in the code names a variable, except the streams' names.
NAME = re.compile(r"""["'](TUNER_[A-Z0-9_]+)["']""")
STREAM = re.compile(r"""^\w+_(?:STREAM|BUCKET) = ["'](TUNER_[A-Z0-9_]+)["']""", re.M)
SHARED = (REPO / "tuner" / "core",)


def read_in(*paths: Path) -> set[str]:
    """The TUNER_* variables named by the Python files under these paths."""
    found: set[str] = set()
    for path in paths:
        for file in [path] if path.is_file() else path.rglob("*.py"):
            if "v1" not in file.relative_to(REPO).parts:
                found.update(NAME.findall(file.read_text()))
    return found - set(STREAM.findall((REPO / "tuner" / "core" / "streams.py").read_text()))


@cache
def read_by_services() -> dict[str, set[str]]:
    return {
        "scheduler": read_in(REPO / "scheduler", REPO / "store", *SHARED),
        "trainer": read_in(REPO / "trainer", *SHARED),
    }


@cache
def in_readme() -> set[str]:
    """The variables in the README's configuration table."""
    return set(re.findall(r"^\| `(TUNER_[A-Z0-9_]+)` \|", (REPO / "README.md").read_text(), re.M))


@cache
def known() -> set[str]:
    return (
        read_in(REPO / "scheduler", REPO / "store", REPO / "trainer", REPO / "tuner") | in_readme()
    )


@cache
def env_example() -> dict[str, str]:
    """NAME -> value of each `NAME=value` line of .env.example, set or shown commented out."""
    text = (REPO / ".env.example").read_text()
    return dict(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$", text, re.M))


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


@cache
def manifests() -> list[dict[str, Any]]:
    return [d for path in manifest_files() for d in yaml.safe_load_all(path.read_text()) if d]


def manifest(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} manifests"
    return found[0]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())
