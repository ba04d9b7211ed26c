"""docker-compose.yml against the compose specification, and against what the services read."""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from check_jsonschema.builtin_schemas import get_builtin_schema

from tests.deploy import files

SERVICES = files.compose()["services"]


def spec_errors(document: dict[str, Any]) -> list[str]:
    """Where a compose file breaks the compose specification (the schema ships offline)."""
    schema = get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def environment(service: str) -> dict[str, Any]:
    env: dict[str, Any] = SERVICES[service].get("environment", {})
    return env


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert spec_errors(files.compose()) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [(("scheduler", "restart"), 3), (("trainer", "replica"), 2), (("nats", "healthcheck"), "yes")],
)
def test_the_specification_check_catches_a_broken_file(
    path: tuple[str, str], value: object
) -> None:
    broken = copy.deepcopy(files.compose())
    service, key = path
    broken["services"][service][key] = value
    assert spec_errors(broken)


def test_every_variable_the_compose_file_interpolates_is_in_env_example() -> None:
    text = (files.REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    assert used - set(files.env_example()) == set()


def test_env_example_holds_every_tuner_variable_and_no_other() -> None:
    listed = {name for name in files.env_example() if name.startswith("TUNER_")}
    assert files.known() - listed == set(), "missing from .env.example"
    assert listed - files.known() == set(), "in .env.example, but read by no service"


def test_the_mongo_uri_in_env_example_uses_the_mongo_credentials() -> None:
    env = files.env_example()
    uri = urlsplit(env["TUNER_MONGO_URI"])
    assert uri.username == env["MONGO_INITDB_ROOT_USERNAME"]
    assert uri.password == env["MONGO_INITDB_ROOT_PASSWORD"]
    assert uri.hostname in SERVICES


@pytest.mark.parametrize("service", ["scheduler", "trainer"])
def test_each_service_gets_only_variables_it_reads(service: str) -> None:
    given = {name for name in environment(service) if name.startswith("TUNER_")}
    assert given - files.read_by_services()[service] == set()


def test_the_scheduler_listens_on_every_interface_of_its_container_and_publishes_the_port() -> None:
    port = environment("scheduler")["TUNER_LISTEN"].rpartition(":")[2]
    assert environment("scheduler")["TUNER_LISTEN"] == f"0.0.0.0:{port}"
    assert any(str(p).endswith(f":{port}") for p in SERVICES["scheduler"]["ports"])
    assert "TUNER_MONGO_URI" in environment("scheduler")


def test_trainers_get_no_database_credentials_and_scale() -> None:
    for name in ("trainer", "trainer-gpu"):
        service = SERVICES[name]
        assert not any("MONGO" in key for key in service.get("environment", {})), name
        assert "container_name" not in service and "ports" not in service, f"{name} must scale"
    assert environment("trainer")["TUNER_DATA_DIR"] == "/data"


def test_the_scheduler_is_health_checked_over_grpc_and_waits_for_healthy_servers() -> None:
    scheduler = SERVICES["scheduler"]
    assert scheduler["healthcheck"]["test"] == ["CMD", "python", "/opt/tuner/healthcheck.py"]
    dockerfile = (files.REPO / "Dockerfile").read_text()
    assert "COPY deploy/docker/healthcheck.py /opt/tuner/healthcheck.py" in dockerfile
    for needed in ("mongo", "nats"):
        assert scheduler["depends_on"][needed] == {"condition": "service_healthy"}
        assert SERVICES[needed]["healthcheck"]["test"]
    assert SERVICES["trainer"]["depends_on"]["nats"] == {"condition": "service_healthy"}


def test_every_service_restarts_and_the_servers_keep_data_on_volumes() -> None:
    for name, service in SERVICES.items():
        assert service.get("restart") or SERVICES[service.get("extends", name)].get("restart"), name
    volumes = files.compose()["volumes"]
    for name, path in (("mongo", "/data/db"), ("nats", "/data")):
        mounted = [v.split(":") for v in SERVICES[name]["volumes"]]
        assert [v for v, p in mounted if p == path and v in volumes], name


def test_gpu_trainers_reserve_nvidia_gpus_and_use_cuda_torch() -> None:
    gpu = SERVICES["trainer-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["environment"]["TUNER_DEVICE"] == "cuda"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "/whl/cu" in gpu["build"]["args"]["TORCH_INDEX"]


def test_the_scheduler_and_the_trainers_serve_metrics_on_the_compose_network() -> None:
    for name in ("scheduler", "trainer"):
        assert environment(name)["TUNER_METRICS_PORT"] == "${TUNER_METRICS_PORT:-9100}", name
    assert files.env_example()["TUNER_METRICS_PORT"] == "9100"
