"""The retention sweeps in the chart: one CronJob per service owning swept
data, on its schedule, never overlapping (Forbid), with its resources, the
database Secret and (audit) the chain's keyring; pods confined like every
other to the allowed regions, reaching only DNS and the database. The
allowed regions are an explicit list (the disaster-recovery site included)
that the affinity and every service's ALLOWED_REGIONS follow."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
from helm_python.errors import HelmRenderError

from identity_runtime import mesh
from tests.support.chart import container_env, find, of_kind, render, render_values

pytestmark = pytest.mark.chart

SWEPT = ("kyc-tier", "liveness", "matching", "audit")
REGION_LABEL = "topology.kubernetes.io/region"


def cronjobs(manifests: list[Any]) -> dict[str, Any]:
    return {m.component: m for m in of_kind(manifests, "CronJob")}


def test_every_owner_of_swept_data_has_a_forbid_cronjob() -> None:
    manifests = render("default")
    jobs = cronjobs(manifests)
    assert set(jobs) == {f"retention-{s}" for s in SWEPT}
    for service in SWEPT:
        job = jobs[f"retention-{service}"]
        spec = job.doc["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert len(spec["schedule"].split()) == 5
        pod = job.pod_spec
        assert pod["restartPolicy"] == "Never"
        assert pod["automountServiceAccountToken"] is False
        [container] = pod["containers"]
        command = container["command"]
        assert command[:5] == ["identity", "retention", "sweep", "--service", service]
        assert container["resources"]["limits"]["cpu"]
        env = {e["name"]: e for e in container["env"]}
        secret = env["IDENTITY_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
        # audit's own role may not delete: its purge runs as the schema owner.
        owner = "identity-database-migrations" if service == "audit" else "identity-database"
        assert secret == owner
        mounts = {m["name"] for m in container["volumeMounts"]}
        assert ("audit-hmac" in mounts) == (service == "audit")
        assert ("--nonce-retention-hours" in command) == (service == "liveness")
    # The audit pods leave the purge to the CronJob.
    audit = container_env(manifests, find(manifests, "Deployment", "audit"))
    assert audit["AUDIT_RETENTION_PURGE_INTERVAL_SECONDS"] == {"value": "0"}
    # Only DNS and the database.
    policy = find(manifests, "NetworkPolicy", "retention").doc["spec"]
    assert policy["ingress"] == [] and set(policy["policyTypes"]) == {"Ingress", "Egress"}


def test_schedules_resources_and_switches_come_from_values() -> None:
    values = {
        "retentionSweep": {
            "batchSize": 500,
            "services": {
                "kyc-tier": {
                    "enabled": True,
                    "schedule": "5 */2 * * *",
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "256Mi"},
                        "limits": {"cpu": "1", "memory": "512Mi"},
                    },
                },
                "audit": {"enabled": False, "schedule": "0 3 * * 0"},
            },
        }
    }
    jobs = cronjobs(render_values(values))
    assert "retention-audit" not in jobs
    kyc = jobs["retention-kyc-tier"]
    assert kyc.doc["spec"]["schedule"] == "5 */2 * * *"
    [container] = kyc.pod_spec["containers"]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    assert container["command"][-2:] == ["--batch", "500"]
    assert cronjobs(render_values({"retentionSweep": {"enabled": False}})) == {}


@pytest.mark.parametrize(
    "values",
    [
        {"retentionSweep": {"concurrencyPolicy": "Allow"}},
        {"retentionSweep": {"services": {"liveness": {"enabled": True, "schedule": "often"}}}},
        {"retentionSweep": {"services": {"billing": {"enabled": True, "schedule": "@daily"}}}},
        {"residency": {"allowedRegions": ["id-jkt-1", "ap-southeast-1"]}},
    ],
)
def test_the_schema_refuses(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        render_values(values)


def test_the_affinity_and_the_services_follow_the_allowed_regions() -> None:
    allowed = ["id-jkt-1", "id-sby-1"]
    manifests = render_values(
        {
            "residency": {
                "allowedRegions": allowed,
                "endpointRegions": {"db-dr.example.net": "id-sby-1"},
            }
        }
    )
    workloads = [*of_kind(manifests, "Deployment"), *of_kind(manifests, "CronJob")]
    for workload in workloads:
        pod = workload.pod_spec
        [term] = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        region = [e for e in term["matchExpressions"] if e["key"] == REGION_LABEL]
        assert region == [{"key": REGION_LABEL, "operator": "In", "values": allowed}]
        # With two regions the affinity pins them; a nodeSelector could name only one.
        assert REGION_LABEL not in pod.get("nodeSelector", {}), workload.name
    for service in mesh.SERVICES:
        env = container_env(manifests, find(manifests, "Deployment", service.name))
        assert env[f"{service.env_prefix}_ALLOWED_REGIONS"] == {"value": "id-jkt-1,id-sby-1"}
        assert env[f"{service.env_prefix}_DATA_REGION"] == {"value": "id-jkt-1"}


@pytest.mark.parametrize(
    ("residency", "problem"),
    [
        ({"region": "id-sby-1"}, "residency.region id-sby-1 must be one of"),
        (
            {"endpointRegions": {"db.example.net": "id-btm-1"}},
            "id-btm-1 is outside residency.allowedRegions",
        ),
    ],
)
def test_the_region_and_every_store_must_be_allowed(
    residency: dict[str, Any], problem: str
) -> None:
    values = {"residency": {"allowedRegions": ["id-jkt-1"], **residency}}
    with pytest.raises(HelmRenderError, match=problem):
        render_values(values)
