"""Policies an SRE review checks, on every rendered values file: resources,
probes, non-root and read-only containers, residency in id-jkt-1, spreading
over its zones, ports that agree, HPA/PDB switches, secrets only by
reference, the migrations hook, Triton on GPU nodes."""

from __future__ import annotations

from typing import Any

import pytest

from identity_cli.common import database_url
from identity_runtime import mesh
from tests.support.chart import (
    VALUES_FILES,
    Manifest,
    container_env,
    containers,
    find,
    load_tool,
    merged_values,
    of_kind,
    pod_workloads,
    render,
)

REGION = "id-jkt-1"
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
PROJECT_COMPONENTS = [s.name for s in mesh.SERVICES] + ["gateway"]

values_files = pytest.mark.parametrize("values_name", list(VALUES_FILES))


def quantity(value: Any) -> float:
    """A Kubernetes quantity as a number (enough to compare requests and limits)."""
    text = str(value)
    suffixes = {
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * suffixes[suffix]
    return float(text)


def deployments(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {m.component: m for m in of_kind(manifests, "Deployment")}


@values_files
def test_every_container_has_requests_and_limits(values_name: str) -> None:
    for workload in pod_workloads(render(values_name)):
        for container in containers(workload.pod_spec):
            where = f"{workload.name}/{container['name']}"
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in resources.get(bound, {}), f"{where}: no {bound}.{resource}"
            for resource in ("cpu", "memory"):
                assert quantity(resources["requests"][resource]) <= quantity(
                    resources["limits"][resource]
                ), where


@values_files
def test_every_long_running_container_has_three_probes(values_name: str) -> None:
    for workload in of_kind(render(values_name), "Deployment"):
        for container in workload.pod_spec["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{workload.name}/{container['name']}: no {probe}"


@values_files
def test_mesh_services_probe_the_grpc_health_service_on_their_health_port(
    values_name: str,
) -> None:
    """The service port demands a mesh client certificate, which the kubelet has
    not: probes use the plaintext health-only port the service opens."""
    manifests = render(values_name)
    for service in mesh.SERVICES:
        deployment = find(manifests, "Deployment", service.name)
        (container,) = deployment.pod_spec["containers"]
        port, health, metrics_port = container["ports"]
        assert (port["name"], health["name"], metrics_port["name"]) == ("grpc", "health", "metrics")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": health["containerPort"]}, (
                f"{service.name} {probe}"
            )
        # The server listens where the probes look, and serves mutual TLS on its port.
        env = container_env(manifests, deployment)
        assert env[f"{service.env_prefix}_PORT"] == {"value": str(port["containerPort"])}
        assert env[f"{service.env_prefix}_HEALTH_PORT"] == {"value": str(health["containerPort"])}
        assert env[f"{service.env_prefix}_MESH_TLS"] == {"value": "on"}
        assert env[f"{service.env_prefix}_HOST"]["value"] in ("0.0.0.0", "::")
        # The Service's grpc port reaches that container port.
        svc = find(manifests, "Service", service.name)
        (svc_port,) = svc.doc["spec"]["ports"]
        assert svc_port["name"] == "grpc" and svc_port["targetPort"] == "grpc"
        assert (
            svc.doc["spec"]["selector"].items()
            <= deployment.doc["spec"]["template"]["metadata"]["labels"].items()
        )


@values_files
def test_gateway_probes_its_health_route_on_its_http_port(values_name: str) -> None:
    manifests = render(values_name)
    if not merged_values(values_name)["gateway"]["enabled"]:
        assert "gateway" not in deployments(manifests)
        return
    deployment = find(manifests, "Deployment", "gateway")
    (container,) = deployment.pod_spec["containers"]
    port, metrics_port = container["ports"]
    assert port["name"] == "http" and port["containerPort"] == mesh.GATEWAY_DEFAULT_PORT
    assert metrics_port["name"] == "metrics"
    path = merged_values(values_name)["gateway"]["probes"]["path"]
    # A route the gateway answers itself: the aggregated /api/healthz would tie
    # every gateway's fate to the least healthy service.
    assert path != "/api/healthz"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
    env = container_env(manifests, deployment)
    assert env["GATEWAY_PORT"] == {"value": str(mesh.GATEWAY_DEFAULT_PORT)}


@values_files
def test_every_pod_runs_non_root_read_only_without_privileges(values_name: str) -> None:
    for workload in pod_workloads(render(values_name)):
        pod = workload.pod_spec
        pod_context = pod["securityContext"]
        assert pod_context["runAsNonRoot"] is True, workload.name
        assert pod_context["runAsUser"] > 0 and pod_context["runAsGroup"] > 0, workload.name
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False, workload.name
        assert pod["enableServiceLinks"] is False, workload.name
        assert "hostNetwork" not in pod and "hostPID" not in pod and "hostIPC" not in pod
        mounts_by_volume = {v["name"]: v for v in pod.get("volumes", [])}
        for container in containers(pod):
            where = f"{workload.name}/{container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context.get("runAsUser", pod_context["runAsUser"]) > 0, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["privileged"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            # A read-only root needs a writable /tmp.
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in mounts_by_volume[tmp[0]["name"]], (
                f"{where}: /tmp is not an emptyDir"
            )


# Volume types the `restricted` Pod Security Standard admits.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


@values_files
def test_pods_meet_the_restricted_pod_security_standard(values_name: str) -> None:
    """What the namespace label pod-security.kubernetes.io/enforce=restricted
    admits, beyond the contexts checked above: volume types and no host ports."""
    for workload in pod_workloads(render(values_name)):
        for volume in workload.pod_spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUMES, (
                f"{workload.name}: volume {volume['name']} is {kinds}"
            )
        for container in containers(workload.pod_spec):
            assert all("hostPort" not in p for p in container.get("ports", [])), workload.name
            assert container["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"


@values_files
def test_project_pods_run_as_the_images_user(values_name: str) -> None:
    values = merged_values(values_name)
    for workload in pod_workloads(render(values_name)):
        if workload.component == "triton":
            continue
        context = workload.pod_spec["securityContext"]
        assert context["runAsUser"] == values["global"]["podSecurityContext"]["runAsUser"]


def required_node_terms(pod: dict[str, Any]) -> list[dict[str, Any]]:
    affinity = pod.get("affinity", {}).get("nodeAffinity", {})
    return affinity.get("requiredDuringSchedulingIgnoredDuringExecution", {}).get(
        "nodeSelectorTerms", []
    )


@values_files
def test_nothing_can_schedule_outside_the_region(values_name: str) -> None:
    values = merged_values(values_name)
    zones = values["residency"]["zones"]
    for workload in pod_workloads(render(values_name)):
        pod = workload.pod_spec
        assert "nodeName" not in pod, f"{workload.name}: nodeName bypasses the scheduler"
        assert pod["nodeSelector"][REGION_LABEL] == REGION, workload.name
        terms = required_node_terms(pod)
        assert terms, f"{workload.name}: no required node affinity"
        # Terms are ORed: every one of them must pin the region.
        for term in terms:
            assert "matchFields" not in term
            region = [e for e in term["matchExpressions"] if e["key"] == REGION_LABEL]
            assert region == [{"key": REGION_LABEL, "operator": "In", "values": [REGION]}], (
                workload.name
            )
            zone = [e for e in term["matchExpressions"] if e["key"] == ZONE_LABEL]
            if zones:
                assert zone == [{"key": ZONE_LABEL, "operator": "In", "values": zones}], (
                    workload.name
                )
                assert all(z.startswith(REGION) for z in zones)


@values_files
def test_deployments_spread_over_zones_and_nodes(values_name: str) -> None:
    values = merged_values(values_name)
    for workload in of_kind(render(values_name), "Deployment"):
        labels = workload.doc["spec"]["template"]["metadata"]["labels"]
        constraints = {c["topologyKey"]: c for c in workload.pod_spec["topologySpreadConstraints"]}
        zone = constraints[ZONE_LABEL]
        assert zone["whenUnsatisfiable"] == values["topologySpread"]["zones"]["whenUnsatisfiable"]
        assert zone["maxSkew"] == values["topologySpread"]["zones"]["maxSkew"]
        for constraint in constraints.values():
            assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
            assert (
                constraint["labelSelector"]["matchLabels"]
                == workload.doc["spec"]["selector"]["matchLabels"]
            )
        assert ("kubernetes.io/hostname" in constraints) == values["topologySpread"]["nodes"][
            "enabled"
        ]


def component_values(values: dict[str, Any], component: str) -> dict[str, Any]:
    if component == "gateway":
        return values["gateway"]
    if component == "triton":
        return values["triton"]
    return values["services"][component]


@values_files
def test_autoscalers_and_disruption_budgets_follow_their_switches(values_name: str) -> None:
    manifests = render(values_name)
    values = merged_values(values_name)
    hpas = {m.component: m for m in of_kind(manifests, "HorizontalPodAutoscaler")}
    pdbs = {m.component: m for m in of_kind(manifests, "PodDisruptionBudget")}
    for component, deployment in deployments(manifests).items():
        settings = component_values(values, component)
        if settings["autoscaling"]["enabled"]:
            hpa = hpas[component].doc
            assert hpa["apiVersion"] == "autoscaling/v2"
            assert hpa["spec"]["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment.name,
            }
            assert hpa["spec"]["minReplicas"] == settings["autoscaling"]["minReplicas"]
            assert hpa["spec"]["maxReplicas"] == settings["autoscaling"]["maxReplicas"]
            # The HPA owns the replica count; the Deployment must not reset it on upgrade.
            assert "replicas" not in deployment.doc["spec"]
        else:
            assert component not in hpas
            assert deployment.doc["spec"]["replicas"] == settings["replicas"]
        if settings["pdb"]["enabled"]:
            selector = pdbs[component].doc["spec"]["selector"]["matchLabels"]
            assert (
                selector.items() <= deployment.doc["spec"]["template"]["metadata"]["labels"].items()
            )
        else:
            assert component not in pdbs
    assert set(hpas) <= set(deployments(manifests)) and set(pdbs) <= set(deployments(manifests))


@values_files
def test_secrets_are_only_referenced(values_name: str) -> None:
    manifests = render(values_name)
    assert not of_kind(manifests, "Secret"), "the chart must not create Secrets"
    catalogue = load_tool("chart").catalogue()["components"]
    secret_settings = {
        name for c in catalogue.values() for name, info in c["settings"].items() if info["secret"]
    }
    for configmap in of_kind(manifests, "ConfigMap"):
        leaked = secret_settings & set(configmap.doc.get("data", {}))
        assert not leaked, f"{configmap.name} holds secret settings {leaked}"
    for workload in pod_workloads(manifests):
        for container in containers(workload.pod_spec):
            for item in container.get("env", []):
                if item["name"] in secret_settings or item["name"] == "IDENTITY_DATABASE_URL":
                    assert set(item["valueFrom"]) == {"secretKeyRef"}, (
                        f"{workload.name}: {item['name']}"
                    )


@values_files
def test_images_are_pinned(values_name: str) -> None:
    for workload in pod_workloads(render(values_name)):
        for container in containers(workload.pod_spec):
            image = container["image"]
            if "@sha256:" in image:
                continue
            tag = image.rsplit(":", 1)[-1]
            assert "/" not in tag and tag not in ("", "latest"), (
                f"{workload.name}: {image} is not pinned"
            )


@values_files
def test_migrations_run_identity_migrate_before_install_and_upgrade(values_name: str) -> None:
    manifests = render(values_name)
    values = merged_values(values_name)
    jobs = of_kind(manifests, "Job")
    if not values["migrations"]["enabled"]:
        assert not jobs
        return
    (job,) = jobs
    annotations = job.doc["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    account = find(manifests, "ServiceAccount", "migrations")
    # The hook's ServiceAccount is created before the Job, as a hook itself.
    assert account.doc["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(account.doc["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        annotations["helm.sh/hook-weight"]
    )
    assert job.pod_spec["serviceAccountName"] == account.name
    assert job.pod_spec["restartPolicy"] == "Never"
    (container,) = job.pod_spec["containers"]
    assert container["command"] == ["identity", "migrate"]
    env, *timeouts = container["env"]
    # Its own credential (the schema owner), not the services' database URL.
    assert env["valueFrom"]["secretKeyRef"] == values["secrets"]["migrationsDatabase"]
    assert {e["name"]: e["value"] for e in timeouts if e["name"].startswith("IDENTITY_")} == {
        "IDENTITY_MIGRATE_LOCK_TIMEOUT": values["migrations"]["lockTimeout"],
        "IDENTITY_MIGRATE_STATEMENT_TIMEOUT": values["migrations"]["statementTimeout"],
        "IDENTITY_MIGRATE_GRANTS": "audit=identity_audit,*=identity_app",
    }
    # `identity migrate` really reads the variable the Job sets.
    import argparse
    import os

    before = os.environ.get(env["name"])
    os.environ[env["name"]] = "postgresql://identity@db.example:5432/identity"
    try:
        assert (
            database_url(argparse.Namespace()) == "postgresql://identity@db.example:5432/identity"
        )
    finally:
        if before is None:
            del os.environ[env["name"]]
        else:
            os.environ[env["name"]] = before


@values_files
def test_service_accounts_exist_for_every_pod(values_name: str) -> None:
    manifests = render(values_name)
    accounts = {m.name for m in of_kind(manifests, "ServiceAccount")}
    for workload in pod_workloads(manifests):
        assert workload.pod_spec["serviceAccountName"] in accounts
    for account in of_kind(manifests, "ServiceAccount"):
        assert account.doc["automountServiceAccountToken"] is False


@values_files
def test_config_changes_and_secret_rotation_roll_the_pods(values_name: str) -> None:
    values = merged_values(values_name)
    for deployment in of_kind(render(values_name), "Deployment"):
        if deployment.component == "triton":
            continue
        annotations = deployment.doc["spec"]["template"]["metadata"]["annotations"]
        assert len(annotations["checksum/config"]) == 64
        assert annotations["identity-platform/secrets-revision"] == str(
            values["global"]["secretsRevision"]
        )


@values_files
def test_termination_grace_covers_the_drain(values_name: str) -> None:
    values = merged_values(values_name)
    manifests = render(values_name)
    for component, deployment in deployments(manifests).items():
        if component == "triton":
            continue
        settings = component_values(values, component)
        grace = deployment.pod_spec["terminationGracePeriodSeconds"]
        assert grace > settings["shutdownGraceSeconds"] + settings["preStopSleepSeconds"]
        (container,) = deployment.pod_spec["containers"]
        assert container["lifecycle"]["preStop"]["exec"]["command"] == [
            "sleep",
            str(settings["preStopSleepSeconds"]),
        ]
        if component != "gateway":
            prefix = mesh.BY_NAME[component].env_prefix
            env = container_env(manifests, deployment)
            assert (
                float(env[f"{prefix}_SHUTDOWN_GRACE_SECONDS"]["value"])
                == settings["shutdownGraceSeconds"]
            )


@values_files
def test_triton_runs_on_gpu_nodes_with_its_model_repository(values_name: str) -> None:
    manifests = render(values_name)
    values = merged_values(values_name)
    triton = values["triton"]
    if not triton["enabled"]:
        assert not [m for m in manifests if m.component == "triton"]
        return
    deployment = find(manifests, "Deployment", "triton")
    pod = deployment.pod_spec
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == triton["gpus"] >= 1
    assert triton["nodeSelector"].items() <= pod["nodeSelector"].items()
    assert triton["tolerations"] == pod["tolerations"]
    assert any(t.get("key") == "nvidia.com/gpu" for t in pod["tolerations"])
    repository = triton["modelRepository"]
    assert f"--model-repository={repository['mountPath']}" in container["args"]
    models = next(m for m in container["volumeMounts"] if m["name"] == "models")
    assert models["mountPath"] == repository["mountPath"] and models["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "models")
    # The model files are checked against their sha256 before Triton starts (last init container).
    *sync, verify = pod["initContainers"]
    assert verify["command"][:3] == ["python", "-m", "identity_inference.triton_verify"]
    assert verify["command"][3] == repository["mountPath"]
    for model, digest in repository.get("sha256", {}).items():
        assert f"{model}={digest}" in verify["command"]
    assert {"name": "models", "mountPath": repository["mountPath"], "readOnly": True} in verify[
        "volumeMounts"
    ]
    if repository["sync"]["enabled"]:
        (init,) = sync
        assert repository["sync"]["source"] in init["args"]
        assert any(
            m["name"] == "models" and m["mountPath"] == repository["mountPath"]
            for m in init["volumeMounts"]
        )
        assert "emptyDir" in volume
    else:
        assert not sync
        assert {k: v for k, v in volume.items() if k != "name"} == repository["volume"]
    # The clients' settings point at Triton's gRPC Service port.
    service = find(manifests, "Service", "triton")
    grpc_port = next(p for p in service.doc["spec"]["ports"] if p["name"] == "grpc")["port"]
    for client, fields in triton["clients"].items():
        env = container_env(manifests, find(manifests, "Deployment", client))
        prefix = mesh.BY_NAME[client].env_prefix
        for field in fields:
            host, port = env[f"{prefix}_{field}"]["value"].rsplit(":", 1)
            assert host.startswith(f"{service.name}.") and int(port) == grpc_port
    # Autoscaling on Triton's own metrics.
    hpas = [m for m in of_kind(manifests, "HorizontalPodAutoscaler") if m.component == "triton"]
    if triton["autoscaling"]["enabled"]:
        (hpa,) = hpas
        metric_types = {m["type"] for m in hpa.doc["spec"]["metrics"]}
        assert metric_types <= {"Pods", "External", "Object"} and metric_types
        names = {
            m["pods"]["metric"]["name"] for m in hpa.doc["spec"]["metrics"] if m["type"] == "Pods"
        }
        for key in ("queueDuration", "gpuUtilization"):
            if triton["autoscaling"][key]["enabled"]:
                assert triton["autoscaling"][key]["metricName"] in names
    else:
        assert not hpas


@values_files
def test_ingress_routes_api_to_the_gateway(values_name: str) -> None:
    manifests = render(values_name)
    values = merged_values(values_name)
    ingresses = of_kind(manifests, "Ingress")
    if not (values["gateway"]["enabled"] and values["gateway"]["ingress"]["enabled"]):
        assert not ingresses
        return
    (ingress,) = ingresses
    gateway = find(manifests, "Service", "gateway")
    for rule in ingress.doc["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"] == {"name": gateway.name, "port": {"name": "http"}}
            assert path["path"].startswith("/api")
