"""The Kubernetes manifests hold together: every Deployment has probes and resources and a
Service, PDB and autoscaler that point at it (the gateway an HPA; each subgraph a KEDA
ScaledObject on CPU and on the depth of every queue it consumes); overlays patch what exists;
secrets are referenced, never committed for production. The YAML is checked as data, and
built with ``kubectl kustomize`` where kubectl is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from crm_shared import devstack

K8S = devstack.REPO / "infra" / "k8s"
SERVICES = {"gateway": 8000, "identity": 8001, "engagement": 8002, "rewards": 8003}

Resource = dict[str, Any]


def load(kustomization_dir: Path) -> tuple[dict[str, Any], list[Resource]]:
    """A kustomization and the documents of its local resource files (bases not followed)."""
    kustomization = yaml.safe_load((kustomization_dir / "kustomization.yaml").read_text())
    docs: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = kustomization_dir / entry
        if path.is_dir():
            assert (path / "kustomization.yaml").exists(), entry
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return kustomization, docs


def by_kind(docs: list[Resource], kind: str) -> dict[str, Resource]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module")
def base() -> tuple[dict[str, Any], list[Resource]]:
    return load(K8S / "base")


def test_every_service_has_a_deployment_with_probes_resources_and_its_command(
    base: tuple[dict[str, Any], list[Resource]],
) -> None:
    deployments = by_kind(base[1], "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, port in SERVICES.items():
        pod = deployments[name]["spec"]["template"]
        assert deployments[name]["spec"]["selector"]["matchLabels"].items() <= (
            pod["metadata"]["labels"].items()
        )
        (container,) = pod["spec"]["containers"]
        assert f"{name}.main:create_app" in container["command"]
        assert container["command"][container["command"].index("--port") + 1] == str(port)
        assert container["ports"][0]["containerPort"] == port
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind])
        assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


# The queues each subgraph consumes (its own, and identity's webhook and partner queues).
CONSUMED = {
    "identity": {"identity.events", "identity.webhooks.events", "identity.partners.events"},
    "engagement": {"engagement.events"},
    "rewards": {"rewards.events"},
}


def test_each_deployment_has_a_matching_service_autoscaler_and_pdb(
    base: tuple[dict[str, Any], list[Resource]],
) -> None:
    docs = base[1]
    deployments = by_kind(docs, "Deployment")
    services = by_kind(docs, "Service")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    scaled = by_kind(docs, "ScaledObject")
    auths = by_kind(docs, "TriggerAuthentication")
    pdbs = by_kind(docs, "PodDisruptionBudget")
    target = {"apiVersion": "apps/v1", "kind": "Deployment"}
    # One autoscaler per Deployment: KEDA makes the HPA of a scaled one (two would fight).
    assert set(hpas) == {"gateway"} and set(scaled) == set(devstack.SUBGRAPHS)
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        service = services[name]
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["port"] == SERVICES[name]
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        if name == "gateway":
            hpa = hpas[name]
            assert hpa["apiVersion"] == "autoscaling/v2"
            assert hpa["spec"]["scaleTargetRef"] == {**target, "name": name}
            (metric,) = hpa["spec"]["metrics"]
            assert metric["resource"]["name"] == "cpu"
            assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        else:
            spec = scaled[name]["spec"]
            assert scaled[name]["apiVersion"] == "keda.sh/v1alpha1"
            assert spec["scaleTargetRef"] == {**target, "name": name}
            assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
            triggers = spec["triggers"]
            assert {t["type"] for t in triggers} == {"cpu", "rabbitmq"}
            depth = [t for t in triggers if t["type"] == "rabbitmq"]
            assert {t["metadata"]["queueName"] for t in depth} == CONSUMED[name]
            for trigger in depth:
                assert trigger["metadata"]["mode"] == "QueueLength"
                assert trigger["metadata"]["vhostName"] == "crm"
                assert int(trigger["metadata"]["value"]) > 0
                assert trigger["authenticationRef"]["name"] in auths
        pdb = pdbs[name]
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def _secret_refs(docs: list[Resource]) -> set[tuple[str, str]]:
    refs = set()
    for doc in docs:
        if doc["kind"] == "TriggerAuthentication":
            refs |= {(r["name"], r["key"]) for r in doc["spec"]["secretTargetRef"]}
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
    return refs


def test_subgraphs_get_their_urls_from_secrets_and_settings_from_the_configmap(
    base: tuple[dict[str, Any], list[Resource]],
) -> None:
    kustomization, docs = base
    for name in devstack.SUBGRAPHS:
        env = {
            e["name"]: e
            for e in by_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0][
                "env"
            ]
        }
        for setting, key in (("DATABASE_URL", "database-url"), ("AMQP_URL", "amqp-url")):
            ref = env[f"{name.upper()}_{setting}"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": f"{name}-secrets", "key": key}
    (generator,) = kustomization["configMapGenerator"]
    assert generator["name"] == "crm-config"
    settings = dict(
        line.split("=", 1)
        for line in (K8S / "base" / generator["envs"][0]).read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name in SERVICES:
        assert settings[f"{name.upper()}_ENVIRONMENT"] == "production"
        assert settings[f"{name.upper()}_JWKS_URL"].startswith("http://identity:8001/")
    assert settings["LOG_FORMAT"] == "json"
    assert not any("password" in v or "@" in v for v in settings.values())
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                assert {"configMapRef": {"name": "crm-config"}} in container["envFrom"]


def test_a_migration_job_per_subgraph_runs_its_alembic_as_its_role(
    base: tuple[dict[str, Any], list[Resource]],
) -> None:
    jobs = by_kind(base[1], "Job")
    assert set(jobs) == {f"{name}-migrate" for name in devstack.SUBGRAPHS}
    for name in devstack.SUBGRAPHS:
        spec = jobs[f"{name}-migrate"]["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never"
        (container,) = spec["containers"]
        assert container["command"][:3] == ["alembic", "-c", f"services/{name}/alembic.ini"]
        assert (devstack.REPO / "services" / name / "alembic.ini").exists()
        assert "resources" in container


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_overlays_build_on_the_base_and_patch_only_what_exists(
    overlay: str, base: tuple[dict[str, Any], list[Resource]]
) -> None:
    directory = K8S / "overlays" / overlay
    kustomization, _ = load(directory)
    assert kustomization["resources"] == ["../../base"]
    assert kustomization["namespace"]
    existing = {(d["kind"], d["metadata"]["name"]) for d in base[1]}
    for patch in kustomization["patches"]:
        for doc in yaml.safe_load_all((directory / patch["path"]).read_text()):
            if doc:
                assert (doc["kind"], doc["metadata"]["name"]) in existing
    generators = {g["name"]: g for g in kustomization.get("configMapGenerator", [])}
    assert generators["crm-config"]["behavior"] == "merge"
    secrets = {g["name"] for g in kustomization.get("secretGenerator", [])}
    if overlay == "dev":
        # Everything the pods reference exists in a dev cluster.
        assert {name for name, _ in _secret_refs(base[1])} <= secrets
    else:
        assert not secrets, "production secrets come from the platform, never from git"


def test_production_runs_at_least_three_replicas_of_everything() -> None:
    docs = [
        d
        for d in yaml.safe_load_all((K8S / "overlays" / "production" / "scale.yaml").read_text())
        if d
    ]
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    scaled = by_kind(docs, "ScaledObject")
    assert set(hpas) == {"gateway"} and set(scaled) == set(devstack.SUBGRAPHS)
    assert all(h["spec"]["minReplicas"] >= 3 for h in hpas.values())
    assert all(s["spec"]["minReplicaCount"] >= 3 for s in scaled.values())


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_kubectl_kustomize_builds_each_overlay(overlay: str) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("no kubectl on this machine")
    built = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    docs = [d for d in yaml.safe_load_all(built.stdout) if d]
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == set(SERVICES)
    namespace = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())[
        "namespace"
    ]
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {namespace}
    scaled = by_kind(docs, "ScaledObject")
    assert set(scaled) == set(devstack.SUBGRAPHS)
    # The overlays' patches reached the ScaledObjects (merged, not replaced).
    for name, doc in scaled.items():
        assert doc["spec"]["scaleTargetRef"]["name"] == name
        assert {t["type"] for t in doc["spec"]["triggers"]} == {"cpu", "rabbitmq"}
    if overlay == "dev":
        secrets = {d["metadata"]["name"] for d in by_kind(docs, "Secret").values()}
        assert "rabbitmq-queue-depth" in secrets
