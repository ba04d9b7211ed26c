"""The Dockerfile, read with Docker's own parser: stages, users, PyTorch builds, build context."""

from __future__ import annotations

import fnmatch
import re
from functools import cache

import dockerfile

from tests.deploy import files


@cache
def stages() -> dict[str, list[dockerfile.Command]]:
    """Each named stage's instructions."""
    out: dict[str, list[dockerfile.Command]] = {}
    current: list[dockerfile.Command] = []
    for command in dockerfile.parse_file(str(files.REPO / "Dockerfile")):
        if command.cmd == "FROM":
            current = out.setdefault(command.value[-1], [])
        current.append(command)
    return out


def values(stage: str, cmd: str) -> list[tuple[str, ...]]:
    return [c.value for c in stages()[stage] if c.cmd == cmd]


def test_there_is_a_target_for_each_service_and_compose_builds_them() -> None:
    assert {"build", "build-trainer", "scheduler", "trainer"} <= set(stages())
    for name, service in files.compose()["services"].items():
        if "build" in service:
            assert service["build"]["target"] in stages(), name
            declared = {v[0].split("=")[0] for s in stages() for v in values(s, "ARG")}
            assert set(service["build"].get("args", {})) <= declared, name


def test_the_services_run_as_a_non_root_user_unbuffered() -> None:
    assert ("PYTHONUNBUFFERED", "1") in zip(*[iter(values("base", "ENV")[0])] * 2, strict=True)
    for stage in ("scheduler", "trainer"):
        (user,) = values(stage, "USER")
        assert user[0].split(":")[0] not in ("0", "root"), stage
        (cmd,) = values(stage, "CMD")
        assert cmd == ("python", "-m", stage)


def test_only_the_trainer_gets_torch_and_its_pins_are_the_projects() -> None:
    scheduler_copies = " ".join(" ".join(c.flags) for c in stages()["scheduler"] if c.cmd == "COPY")
    assert "--from=build " in scheduler_copies + " " and "build-trainer" not in scheduler_copies
    args = dict(v[0].split("=", 1) for v in values("build-trainer", "ARG"))
    assert args["TORCH_INDEX"].endswith("/whl/cpu"), "a CPU build by default"
    pins = dict(
        p.split("==") for p in files.pyproject()["project"]["optional-dependencies"]["trainer"]
    )
    assert args["TORCH_VERSION"] == pins["torch"]
    assert args["TORCHVISION_VERSION"] == pins["torchvision"]


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_secrets() -> None:
    patterns = [
        line
        for line in (files.REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: everything else stays out"
    allowed = [p[1:] for p in patterns if p.startswith("!")]
    sources = [
        source
        for stage in stages().values()
        for c in stage
        if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags)
        for source in c.value[:-1]
    ]
    assert sources
    for source in sources:
        assert any(
            source == a or fnmatch.fnmatch(source, a) or source.startswith(a + "/") for a in allowed
        ), source
    for secret in (".env", ".venv", ".git"):
        assert not any(re.fullmatch(fnmatch.translate(a), secret) for a in allowed), secret
