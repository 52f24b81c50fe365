"""The deployment manifests are valid and run what dipgw is.

- Kubernetes (deploy/k8s/): every resource validates against the Kubernetes JSON schemas
  (`kubernetes-validate`, strict: unknown fields refused; the schemas ship in the package, so
  nothing is downloaded), for the oldest and newest versions it knows of that we support.
- Compose (deploy/compose/compose.yaml): `podman-compose --dry-run config` (interpolation,
  anchors, merge keys; no podman needed) and the result validated against the compose-spec
  JSON schema vendored beside it (podman-compose itself accepts unknown keys).
- Every dipgw process's settings — the ConfigMap's TOML plus the container's environment, or
  compose's environment — are read with `load_settings`, the code the process runs at start:
  a mistyped `DIPGW_*` name, a bad value or a missing Secret key fails here, not in a pod.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from adapters.runtime.metrics import REGISTRY
from adapters.runtime.settings import Settings, SettingsError, load_settings
from gateway.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
COMPOSE_SCHEMA = DEPLOY / "compose" / "compose-spec.json"
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
MASTER_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
IMAGE = "dipgw:latest"


def _manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


MANIFESTS = _manifests()


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [m for m in MANIFESTS if m["kind"] == kind]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [m for m in _of_kind(kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


WORKLOADS = _of_kind("Deployment") + _of_kind("Job")
SECRET = _one("Secret", "dipgw-secrets")
CONFIG = _one("ConfigMap", "dipgw-config")


def _validate_k8s(resource: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(resource, version, strict=True)


# --- Kubernetes -------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_file() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    assert all(m["metadata"].get("namespace", "dipgw") == "dipgw" for m in MANIFESTS)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    kinds = {m["kind"] for m in MANIFESTS}
    assert {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Job",
    } <= kinds
    for resource in MANIFESTS:
        _validate_k8s(resource, version)


def test_the_schema_check_refuses_what_kubernetes_would() -> None:
    """Not vacuous: an unknown field, a wrong type and an HPA external metric without its
    name are each refused."""
    hpa = _one("HorizontalPodAutoscaler", "dipgw-workers")
    version = KUBERNETES_VERSIONS[-1]
    broken = []
    unknown = copy.deepcopy(_one("Deployment", "dipgw-gateway"))
    unknown["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    broken.append(unknown)
    wrong_type = copy.deepcopy(_one("PodDisruptionBudget", "dipgw-gateway"))
    wrong_type["spec"]["selector"] = "app=dipgw"
    broken.append(wrong_type)
    nameless = copy.deepcopy(hpa)
    del nameless["spec"]["metrics"][0]["external"]["metric"]["name"]
    broken.append(nameless)
    for resource in broken:
        with pytest.raises(kubernetes_validate.ValidationError):
            _validate_k8s(resource, version)


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _port(container: dict[str, Any], name: str) -> int:
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name)


def test_every_workload_is_non_root_bounded_and_read_only() -> None:
    assert {w["metadata"]["name"] for w in WORKLOADS} == {
        "dipgw-gateway",
        "dipgw-workers",
        "dipgw-migrate",
        "dipgw-topics-apply",
    }
    for workload in WORKLOADS:
        pod = workload["spec"]["template"]["spec"]
        container = _container(workload)
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        assert container["image"] == IMAGE, name
        resources = container["resources"]
        for key in ("cpu", "memory"):
            assert resources["requests"][key] and resources["limits"][key], (name, key)
        # a read-only root: the state dir and the file workers' sockets live on /tmp
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), name


def test_every_deployment_probes_healthz_for_liveness_and_readyz_for_readiness() -> None:
    deployments = _of_kind("Deployment")
    assert len(deployments) == 2
    for deployment in deployments:
        container = _container(deployment)
        name = deployment["metadata"]["name"]
        live, ready = container["livenessProbe"], container["readinessProbe"]
        assert live["httpGet"]["path"] == "/healthz", name
        assert ready["httpGet"]["path"] == "/readyz", name
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name
        # the gateway answers them on its HTTP port, a worker-only process on metrics.listen
        expected = "http" if name == "dipgw-gateway" else "metrics"
        assert live["httpGet"]["port"] == ready["httpGet"]["port"] == expected, name


def test_services_pdbs_and_the_autoscaler_reach_their_pods() -> None:
    for deployment in _of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        name = deployment["metadata"]["name"]
        service = _one("Service", name)
        assert service["spec"]["selector"].items() <= labels.items()
        ports = {p["name"] for p in _container(deployment)["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
        pdb = _one("PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert _one("Deployment", "dipgw-gateway")["spec"]["replicas"] >= 2
    assert _one("PodDisruptionBudget", "dipgw-gateway")["spec"]["minAvailable"] >= 1


def test_the_autoscaler_scales_workers_on_the_consumer_lag_dipgw_exports() -> None:
    hpa = _one("HorizontalPodAutoscaler", "dipgw-workers")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "dipgw-workers",
    }
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    name = metric["external"]["metric"]["name"]
    exported = {m.name for m in REGISTRY.collect()}
    assert name in exported, f"{name} is not a metric dipgw exports"
    # more worker pods than partitions would get no partition to read
    assert (
        hpa["spec"]["maxReplicas"]
        == _k8s_settings(_one("Deployment", "dipgw-workers"))[0].topics.partitions
    )


def _k8s_settings(
    workload: dict[str, Any], tmp: Path | None = None
) -> tuple[Settings, dict[str, str]]:
    """The settings the workload's process would start with: the ConfigMap's TOML where the
    container mounts it, then its environment, Secret values taken from the Secret."""
    tmp = tmp or Path(tempfile.mkdtemp(prefix="dipgw-k8s-"))
    container = _container(workload)
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    for mount in container["volumeMounts"]:
        source = volumes[mount["name"]]
        if "configMap" in source:
            assert source["configMap"]["name"] == CONFIG["metadata"]["name"]
            target = tmp / mount["mountPath"].lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            for key, text in CONFIG["data"].items():
                (target / key).write_text(text, encoding="utf-8")
    environ: dict[str, str] = {}
    for entry in container["env"]:
        if "value" in entry:
            value = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == SECRET["metadata"]["name"], entry
            assert ref["key"] in SECRET["stringData"], f"Secret has no key {ref['key']}"
            value = SECRET["stringData"][ref["key"]]
            if ref["key"] == "master-key":  # a placeholder in the repository (next test)
                value = MASTER_KEY
        environ[entry["name"]] = value
    config = environ.get("DIPGW_CONFIG")
    assert config, "DIPGW_CONFIG names the ConfigMap's file"
    environ["DIPGW_CONFIG"] = str(tmp / config.lstrip("/"))
    return load_settings(environ=environ), environ


@pytest.mark.parametrize("name", ["dipgw-gateway", "dipgw-workers", "dipgw-migrate"])
def test_every_workload_starts_with_settings_dipgw_accepts(name: str, tmp_path: Path) -> None:
    workload = next(w for w in WORKLOADS if w["metadata"]["name"] == name)
    settings, _ = _k8s_settings(workload, tmp_path)
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.kafka.sasl_username and settings.kafka.sasl_password
    assert settings.pg.dsn.startswith("postgresql://")
    assert settings.auth.master_key == MASTER_KEY and settings.auth.require_master_key
    assert settings.topics.auto_create is False and settings.topics.replication_factor == 3
    assert settings.state_dir.startswith("/tmp/")
    container = _container(workload)
    if "ports" in container:
        assert settings.metrics.listen == f"0.0.0.0:{_port(container, 'metrics')}"
    if name == "dipgw-gateway":
        assert settings.http.host == "0.0.0.0"
        assert settings.http.port == _port(container, "http")


def test_every_workload_runs_a_real_dipgw_command(tmp_path: Path) -> None:
    expected = {
        "dipgw-gateway": ("up", {"workers": "", "no_gateway": False}),
        "dipgw-workers": ("up", {"no_gateway": True}),
        "dipgw-migrate": ("db", {"verb": "migrate"}),
        "dipgw-topics-apply": ("topics", {"verb": "apply"}),
    }
    parser = build_parser()
    for workload in WORKLOADS:
        command, attrs = expected[workload["metadata"]["name"]]
        args = parser.parse_args(_container(workload)["args"])
        assert args.command == command
        assert {k: getattr(args, k) for k in attrs} == attrs
    # the topics Job connects as the principal allowed to create topics
    settings, _ = _k8s_settings(_one("Job", "dipgw-topics-apply"), tmp_path)
    assert settings.kafka.sasl_username == "dipgw-admin"


def test_a_mistyped_setting_or_the_placeholder_key_stops_the_start(tmp_path: Path) -> None:
    workload = copy.deepcopy(_one("Deployment", "dipgw-workers"))
    env = _container(workload)["env"]
    env.append({"name": "DIPGW_KAFKA_SASL_USERNAM", "value": "x"})
    with pytest.raises(SettingsError, match="DIPGW_KAFKA_SASL_USERNAM: unknown setting"):
        _k8s_settings(workload, tmp_path)
    # the repository's Secret holds placeholders: deployed unchanged, nothing starts
    _, environ = _k8s_settings(_one("Deployment", "dipgw-workers"), tmp_path)
    environ["DIPGW_AUTH_MASTER_KEY"] = SECRET["stringData"]["master-key"]
    with pytest.raises(SettingsError, match=r"auth\.master_key"):
        load_settings(environ=environ)


# --- Compose ----------------------------------------------------------------------------


def _podman_compose(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "podman-compose"
    assert tool.exists(), "podman-compose is missing: pyproject's test extras install it"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")} | environ
    return subprocess.run(
        [str(tool), "--dry-run", "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    done = _podman_compose({"DIPGW_AUTH_MASTER_KEY": MASTER_KEY})
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def _compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_compose_file_validates_against_the_compose_spec(compose: dict[str, Any]) -> None:
    validator = _compose_validator()
    source = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    for document in (source, compose):
        errors = [e.message for e in validator.iter_errors(document)]
        assert not errors, errors
    # not vacuous: a misspelled key is refused (podman-compose itself passes it through)
    broken = copy.deepcopy(compose)
    broken["services"]["workers"]["comand"] = broken["services"]["workers"].pop("command")
    assert list(validator.iter_errors(broken))


def test_the_compose_file_needs_the_master_key() -> None:
    done = _podman_compose({})
    assert done.returncode != 0
    assert "DIPGW_AUTH_MASTER_KEY" in done.stderr


def test_compose_runs_three_brokers_postgres_two_gateways_and_workers(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    brokers = {n: s for n, s in services.items() if s["image"].endswith("apache/kafka:4.1.1")}
    assert len(brokers) == 3
    node_ids = {s["environment"]["KAFKA_NODE_ID"]: n for n, s in brokers.items()}
    assert sorted(node_ids) == ["1", "2", "3"]
    for name, service in brokers.items():  # each advertises its own name to the clients
        assert service["environment"]["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
    voters = {s["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for s in brokers.values()}
    assert voters == {",".join(f"{i}@{n}:9093" for i, n in sorted(node_ids.items()))}
    assert len({s["environment"]["CLUSTER_ID"] for s in brokers.values()}) == 1
    [postgres] = [s for s in services.values() if s["image"].endswith("postgres:16")]

    dipgw = {n: s for n, s in services.items() if s["image"] == IMAGE}
    parser = build_parser()
    roles: dict[str, list[str]] = {}
    for name, service in dipgw.items():
        args = parser.parse_args(service["command"])
        role = (
            "gateway"
            if args.command == "up" and args.workers == ""
            else "workers"
            if args.command == "up" and args.no_gateway
            else f"{args.command} {args.verb}"
        )
        roles.setdefault(role, []).append(name)
        settings = load_settings(environ=service["environment"])
        assert settings.kafka.bootstrap.split(",") == [f"{n}:9092" for n in sorted(brokers)]
        user = postgres["environment"]["POSTGRES_USER"]
        assert settings.pg.dsn.startswith(f"postgresql://{user}:")
        assert settings.auth.master_key == MASTER_KEY and settings.auth.require_master_key
        assert settings.topics.auto_create is False and settings.topics.replication_factor == 3
        if args.command == "up":
            assert settings.metrics.listen.endswith(":9464")
            assert service["depends_on"]["topics"]["condition"] == (
                "service_completed_successfully"
            )
    assert {k: len(v) for k, v in roles.items()} == {
        "gateway": 2,
        "workers": 1,
        "db migrate": 1,
        "topics apply": 1,
    }
    published = [p for n in roles["gateway"] for p in services[n]["ports"]]
    assert len(set(published)) == 2
