"""deploy/k8s against the Kubernetes schemas (bundled, offline) and against the services."""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from tests.deploy import files

# gRPC probes are GA from 1.27; check the oldest version we claim and the newest bundled.
VERSIONS = ["1.27", latest_version()]
WORKLOADS = ("Deployment", "StatefulSet")


def workloads() -> list[dict[str, Any]]:
    return [d for d in files.manifests() if d["kind"] in WORKLOADS]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    for document in files.manifests():
        kubernetes_validate.validate(document, version, strict=True)


def test_the_schema_check_catches_a_broken_manifest() -> None:
    broken = copy.deepcopy(files.manifest("Deployment", "scheduler"))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["grpc"]["prot"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_the_kustomizations_list_every_manifest() -> None:
    for folder in (files.K8S, files.K8S / "gpu"):
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        here = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
        listed = set(kustomization["resources"])
        assert listed - {".."} == here, folder
        assert kustomization["namespace"] == "tuner"
    assert (
        ".." in yaml.safe_load((files.K8S / "gpu" / "kustomization.yaml").read_text())["resources"]
    )


def test_the_scheduler_is_probed_on_grpc_health_at_the_port_it_listens_on() -> None:
    (container,) = files.containers(files.manifest("Deployment", "scheduler"))
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["grpc"]
    assert env_of(container)["TUNER_LISTEN"]["value"] == f"0.0.0.0:{port}"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"]["port"] == port, probe
    service = files.manifest("Service", "scheduler")
    assert service["spec"]["ports"][0]["targetPort"] == "grpc"


def test_gpu_trainers_have_nvidia_gpu_limits() -> None:
    (container,) = files.containers(files.manifest("Deployment", "trainer-gpu"))
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert env_of(container)["TUNER_DEVICE"]["value"] == "cuda"
    assert container["image"].endswith("-cuda")


def test_every_container_has_requests_and_limits_and_runs_as_non_root() -> None:
    for workload in workloads():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        for container in files.containers(workload):
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), container["name"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_configuration_comes_from_the_configmap_and_the_secret_and_names_known_variables() -> None:
    defined = {
        (d["kind"], d["metadata"]["name"]): set(d.get("data") or d.get("stringData") or {})
        for d in files.manifests()
        if d["kind"] in ("ConfigMap", "Secret")
    }
    for kind, name in (("ConfigMap", "tuner-config"), ("Secret", "tuner-secrets")):
        assert {k for k in defined[kind, name] if k.startswith("TUNER_")} <= files.known(), name
    for workload in workloads():
        for container in files.containers(workload):
            for source in container.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in defined
            for name, entry in env_of(container).items():
                assert not name.startswith("TUNER_") or name in files.known(), name
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in defined["Secret", ref["name"]], name


def test_only_the_scheduler_and_mongo_see_the_secret() -> None:
    for workload in workloads():
        text = yaml.safe_dump(workload)
        uses_secret = "secretKeyRef" in text or "secretRef" in text
        assert uses_secret == (workload["metadata"]["name"] in ("scheduler", "mongo")), text[:80]


def test_every_service_selects_pods_that_have_its_target_ports() -> None:
    for service in (d for d in files.manifests() if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        pods = [
            w
            for w in workloads()
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert pods, service["metadata"]["name"]
        ports = {p["name"] for w in pods for c in files.containers(w) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, service["metadata"]["name"]


def test_the_nats_cluster_routes_to_each_of_its_replicas() -> None:
    nats = files.manifest("StatefulSet", "nats")
    config = files.manifest("ConfigMap", "nats-config")["data"]["nats.conf"]
    routes = re.findall(r"nats://([\w.-]+):6222", config)
    service = nats["spec"]["serviceName"]
    replicas = nats["spec"]["replicas"]
    assert routes == [f"nats-{i}.{service}" for i in range(replicas)]
    assert files.manifest("Service", service)["spec"]["publishNotReadyAddresses"] is True
    stream_replicas = files.manifest("ConfigMap", "tuner-config")["data"]["TUNER_STREAM_REPLICAS"]
    assert 1 <= int(stream_replicas) <= replicas


def test_images_are_the_ones_compose_builds_at_the_project_version() -> None:
    version = files.pyproject()["project"]["version"]
    built = {s["image"] for s in files.compose()["services"].values() if "build" in s}
    assert built == {
        f"tuner-scheduler:{version}",
        f"tuner-trainer:{version}",
        f"tuner-trainer:{version}-cuda",
    }
    ours = {c["image"] for w in workloads() for c in files.containers(w) if "tuner-" in c["image"]}
    assert ours == built


def test_the_scheduler_and_the_trainers_serve_metrics_where_their_pods_say() -> None:
    port = int(files.manifest("ConfigMap", "tuner-config")["data"]["TUNER_METRICS_PORT"])
    assert port > 0
    for name in ("scheduler", "trainer", "trainer-gpu"):
        workload = files.manifest("Deployment", name)
        assert workload["spec"]["template"]["metadata"]["annotations"] == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }, name
        (container,) = files.containers(workload)
        assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == port
        assert {"configMapRef": {"name": "tuner-config"}} in container["envFrom"], name
