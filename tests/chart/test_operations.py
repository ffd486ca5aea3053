"""What an SRE needs to install, upgrade, roll back and recover (issue 16):
TLS material for the data stores in every pod, the migrations' hook order
and credentials, the connection budget, the helm test hook, the Gateway API
route, the operator hooks (env, volumes, sidecars, labels, affinity, service
accounts, images, one registry), prerequisite checks and gallery sizing."""

from __future__ import annotations

from typing import Any

import pytest
from helm_python.errors import HelmRenderError

from tests.support.chart import (
    NAMESPACE,
    RELEASE,
    Manifest,
    containers,
    find,
    of_kind,
    pod_workloads,
    render,
    render_raw,
    render_values,
    render_with_apis,
)

TLS = {
    "dataStoreTls": {
        "postgres": {"caSecret": "pg-ca", "caKey": "root.crt", "clientCertSecret": "pg-client"},
        "redis": {"caSecret": "redis-ca", "caKey": "ca.crt", "clientCertSecret": ""},
    },
    "triton": {"enabled": True, "modelRepository": {"volume": {"emptyDir": {}}}},
}
MOUNT = "/var/run/secrets/identity-datastore-tls"


def project_pods(manifests: list[Manifest]) -> list[Manifest]:
    """Every pod of the project's image: services, gateway, migrations, retention
    sweeps, helm test."""
    return [m for m in pod_workloads(manifests) if m.component != "triton"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_data_store_certificates_reach_every_pod_and_the_hook_job() -> None:
    manifests = render_values(TLS)
    pods = project_pods(manifests)
    assert {m.kind for m in pods} == {"Deployment", "Job", "CronJob", "Pod"}
    for workload in pods:
        (container,) = [c for c in workload.pod_spec["containers"]]
        volumes = {v["name"]: v for v in workload.pod_spec["volumes"]}
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        for volume, secret, path in (
            ("datastore-postgres-ca", "pg-ca", "postgres-ca"),
            ("datastore-postgres-client", "pg-client", "postgres-client"),
            ("datastore-redis-ca", "redis-ca", "redis-ca"),
        ):
            assert volumes[volume]["secret"]["secretName"] == secret, workload.name
            assert mounts[volume] == {
                "name": volume,
                "mountPath": f"{MOUNT}/{path}",
                "readOnly": True,
            }
        assert volumes["datastore-postgres-ca"]["secret"]["items"] == [
            {"key": "root.crt", "path": "ca.crt"}
        ]
        env = env_of(container)
        assert env["PGSSLROOTCERT"] == f"{MOUNT}/postgres-ca/ca.crt", workload.name
        assert env["PGSSLCERT"] == f"{MOUNT}/postgres-client/tls.crt"
        assert env["PGSSLKEY"] == f"{MOUNT}/postgres-client/tls.key"
    # Nothing is mounted unless asked for.
    for workload in project_pods(render("default")):
        assert not [v for v in workload.pod_spec["volumes"] if v["name"].startswith("datastore")]


def test_operator_hooks_reach_the_pods() -> None:
    hooks = {
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
        "extraVolumes": [{"name": "extra", "configMap": {"name": "extra"}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/etc/extra", "readOnly": True}],
    }
    manifests = render_values(
        {
            "global": {
                **hooks,
                "podLabels": {"team": "identity", "app.kubernetes.io/name": "hijack"},
                "commonLabels": {"cost-centre": "kyc"},
            },
            "services": {
                "matching": {
                    "sidecars": [{"name": "shipper", "image": "registry.example/shipper:1.0"}],
                    "initContainers": [{"name": "wait", "image": "registry.example/wait:1.0"}],
                    "podLabels": {"tier": "gallery"},
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 50,
                                    "podAffinityTerm": {
                                        "topologyKey": "kubernetes.io/hostname",
                                        "labelSelector": {"matchLabels": {"tier": "gallery"}},
                                    },
                                }
                            ]
                        },
                        "nodeAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 10,
                                    "preference": {
                                        "matchExpressions": [
                                            {"key": "pool", "operator": "In", "values": ["mem"]}
                                        ]
                                    },
                                }
                            ]
                        },
                    },
                }
            },
        }
    )
    for workload in project_pods(manifests):
        container = workload.pod_spec["containers"][0]
        assert env_of(container)["HTTPS_PROXY"] == "http://proxy:3128", workload.name
        assert {"name": "extra", "configMap": {"name": "extra"}} in workload.pod_spec["volumes"]
        assert hooks["extraVolumeMounts"][0] in container["volumeMounts"]
    matching = find(manifests, "Deployment", "matching")
    spec = matching.pod_spec
    assert [c["name"] for c in spec["containers"]] == ["matching", "shipper"]
    assert [c["name"] for c in spec["initContainers"]] == ["wait"]
    labels = matching.pod_labels
    assert labels["tier"] == "gallery" and labels["team"] == "identity"
    assert labels["app.kubernetes.io/name"] == "identity-platform"
    affinity = spec["affinity"]
    # The region stays required; the operator's preferences come on top.
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert (
        affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"]
        == 10
    )
    assert affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    for manifest in manifests:
        assert manifest.doc["metadata"]["labels"]["cost-centre"] == "kyc", manifest.name


def test_existing_service_accounts_are_used_and_not_created() -> None:
    manifests = render_values(
        {
            "services": {"audit": {"serviceAccount": {"create": False, "name": "audit-wi"}}},
            "migrations": {"serviceAccount": {"create": False, "name": "migrator"}},
        }
    )
    assert find(manifests, "Deployment", "audit").pod_spec["serviceAccountName"] == "audit-wi"
    assert of_kind(manifests, "Job")[0].pod_spec["serviceAccountName"] == "migrator"
    names = {m.name for m in of_kind(manifests, "ServiceAccount")}
    assert not any(n.endswith("-audit") or n.endswith("-migrations") for n in names)
    with pytest.raises(HelmRenderError, match="serviceAccount.create is false"):
        render_values({"services": {"audit": {"serviceAccount": {"create": False}}}})


def test_one_registry_override_covers_every_image_and_components_override_theirs() -> None:
    values = {
        **TLS,
        "global": {"imageRegistry": "mirror.example.co.id/identity"},
        "triton": {
            "enabled": True,
            "modelRepository": {"sync": {"enabled": True, "source": "models:bucket/triton"}},
        },
        "services": {"embedding": {"image": {"repository": "identity/embedding", "tag": "0.2.0"}}},
    }
    manifests = render_values(values)
    images = {
        (w.component, c["name"]): c["image"]
        for w in pod_workloads(manifests)
        for c in containers(w.pod_spec)
    }
    assert all(i.startswith("mirror.example.co.id/identity/") for i in images.values()), images
    assert (
        images[("embedding", "embedding")]
        == "mirror.example.co.id/identity/identity/embedding:0.2.0"
    )
    assert images[("matching", "matching")].endswith("/identity-platform:0.1.0")


def test_the_migrations_policy_and_account_exist_before_the_hook_job() -> None:
    manifests = render("default")
    (job,) = of_kind(manifests, "Job")
    policy = find(manifests, "NetworkPolicy", "migrations")
    account = find(manifests, "ServiceAccount", "migrations")

    def weight(m: Manifest) -> int:
        return int(m.doc["metadata"]["annotations"]["helm.sh/hook-weight"])

    for hook in (policy, account):
        assert hook.doc["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert weight(policy) < weight(job) and weight(account) < weight(job)
    # The Job's pod is what the policy selects, and it may reach DNS and the database.
    labels = job.doc["spec"]["template"]["metadata"]["labels"]
    selector = policy.doc["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert len(policy.doc["spec"]["egress"]) == 2


@pytest.mark.parametrize(
    ("overrides", "total"),
    [
        ({}, None),
        ({"services": {"kyc-tier": {"autoscaling": {"maxReplicas": 40}}}}, 514),
        ({"database": {"maxConnections": 100}}, 218),
        ({"services": {"kyc-tier": {"config": {"DATABASE_POOL_SIZE": 30}}}}, 504),
    ],
)
def test_rendering_fails_over_the_connection_budget(overrides: dict, total: int | None) -> None:
    if total is None:
        manifests = render_values(overrides)
        config = find(manifests, "ConfigMap", "kyc-tier").doc["data"]
        assert config["KYC_TIER_DATABASE_POOL_SIZE"] == "8"
        assert find(manifests, "ConfigMap", "audit").doc["data"]["AUDIT_DATABASE_POOL_SIZE"] == "4"
        return
    with pytest.raises(HelmRenderError, match=f"budget exceeded: {total} connections"):
        render_values(overrides)


def test_the_helm_test_hook_runs_the_smoke_against_the_gateway() -> None:
    manifests = render("default")
    (pod,) = of_kind(manifests, "Pod")
    assert pod.doc["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod.pod_spec["containers"]
    assert container["command"] == [
        "identity",
        "smoke",
        "--gateway-url",
        f"http://{RELEASE}-identity-platform-gateway.{NAMESPACE}.svc.cluster.local:80",
    ]
    assert env_of(container)["IDENTITY_SMOKE_API_KEY"] == {
        "secretKeyRef": {"name": "identity-smoke-api-key", "key": "key"}
    }
    assert pod.pod_spec["restartPolicy"] == "Never"
    policy = find(manifests, "NetworkPolicy", "smoke-test")
    assert policy.doc["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert not of_kind(render_values({"tests": {"enabled": False}}), "Pod")


def test_the_gateway_api_route_needs_the_api_and_a_gateway() -> None:
    values = {
        "gateway": {
            "httpRoute": {
                "enabled": True,
                "parentRefs": [{"name": "public", "namespace": "gateway-system"}],
                "hostnames": ["identity.id-jkt-1.example.co.id"],
            }
        },
        "global": {"prerequisiteChecks": "strict", "imageRegistry": "r.example"},
    }
    manifests = render_with_apis(values, "gateway.networking.k8s.io/v1/HTTPRoute")
    (route,) = of_kind(manifests, "HTTPRoute")
    (rule,) = route.doc["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}}]
    assert rule["backendRefs"] == [{"name": f"{RELEASE}-identity-platform-gateway", "port": 80}]
    assert route.doc["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateway-system"}]
    with pytest.raises(HelmRenderError, match="does not serve"):
        render_values(values)
    with pytest.raises(HelmRenderError, match="parentRefs"):
        render_values({"gateway": {"httpRoute": {"enabled": True}}})


@pytest.mark.parametrize(
    ("values", "api"),
    [
        (
            {"observability": {"serviceMonitor": {"enabled": True}}},
            "monitoring.coreos.com/v1/PodMonitor",
        ),
        (
            {"observability": {"prometheusRule": {"enabled": True}}},
            "monitoring.coreos.com/v1/PrometheusRule",
        ),
        ({"meshTls": {"certManager": {"enabled": True}}}, "cert-manager.io/v1/Certificate"),
        ({"faceMatchQueueScaling": {"enabled": True}}, "keda.sh/v1alpha1/ScaledObject"),
    ],
)
def test_missing_apis_fail_the_render(values: dict, api: str) -> None:
    strict = {**values, "global": {"prerequisiteChecks": "strict", "imageRegistry": "r.example"}}
    with pytest.raises(HelmRenderError, match=f"needs {api}"):
        render_values(strict)
    render_with_apis(strict, api)
    # auto: offline (`helm template`) nothing is checked.
    render_values(values)


def test_gallery_sizing_is_declared_warned_and_enforced() -> None:
    notes = lambda values: render_raw(values)["identity-platform/templates/NOTES.txt"]  # noqa: E731
    assert "gallery" not in notes({})
    assert "WARNING: matching's gallery is sized for 1400000 faces" in notes(
        {"capacity": {"matching": {"expectedFaces": 1400000}}}
    )
    with pytest.raises(HelmRenderError, match="exceeds matching's limit of 1572864 faces"):
        render_values({"capacity": {"matching": {"expectedFaces": 1600000}}})
    # Production's 6Gi: the 5-minute startup budget binds first (about 2.3 M faces).
    with pytest.raises(HelmRenderError, match="limit of 2307692 faces .startup budget 300s"):
        render_values(
            {
                "capacity": {"matching": {"expectedFaces": 2400000}},
                "services": {"matching": {"resources": {"limits": {"memory": "6Gi"}}}},
            }
        )


def test_triton_is_headless_drains_and_keeps_two_replicas_under_its_pdb() -> None:
    manifests = render_values(TLS)
    service = find(manifests, "Service", "triton")
    assert service.doc["spec"]["clusterIP"] == "None"
    deployment = find(manifests, "Deployment", "triton")
    (container,) = deployment.pod_spec["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
    assert "--exit-timeout-secs=30" in container["args"]
    assert deployment.pod_spec["terminationGracePeriodSeconds"] == 10 + 30 + 5
    hpa = [m for m in of_kind(manifests, "HorizontalPodAutoscaler") if m.component == "triton"]
    assert hpa[0].doc["spec"]["minReplicas"] == 2
    assert find(manifests, "PodDisruptionBudget", "triton").doc["spec"]["maxUnavailable"] == 1
    image = container["image"]
    assert image.endswith(":25.07-py3") or "@sha256:" in image
    one = {"triton": {**TLS["triton"], "autoscaling": {"enabled": False}, "replicas": 1}}
    with pytest.raises(HelmRenderError, match="evicts the only Triton"):
        render_values(one)
    with pytest.raises(HelmRenderError, match="predates 25.07"):
        render_values({"triton": {**TLS["triton"], "image": {"tag": "24.10-py3"}}})


def test_the_production_example_runs_the_model_its_comment_names() -> None:
    manifests = render("production")
    embedding = find(manifests, "ConfigMap", "embedding").doc["data"]
    assert embedding["EMBEDDING_BACKEND"] == "triton"
    assert embedding["EMBEDDING_EMBEDDING_MODEL"] == "qe-face-v3"
    assert "-triton." in embedding["EMBEDDING_TRITON_URL"]
    matching = find(manifests, "ConfigMap", "matching").doc["data"]
    assert matching["MATCHING_MODEL_ID"] == "qe-face-v3" and matching["MATCHING_DIMENSION"] == "512"


def test_installing_needs_your_registry_for_the_image() -> None:
    with pytest.raises(
        HelmRenderError, match="global.image.registry .or global.imageRegistry. is required"
    ):
        render_values({"global": {"prerequisiteChecks": "strict"}})
    render_values(
        {"global": {"prerequisiteChecks": "strict", "imageRegistry": "registry.example.co.id"}}
    )
