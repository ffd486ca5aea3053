"""Face Match in the chart: its workers scale on queue depth (KEDA) when asked,
on CPU otherwise; only face-match may reach partners' HTTPS endpoints."""

from __future__ import annotations

import pytest
from helm_python.errors import HelmRenderError

from tests.support.chart import find, of_kind, render, render_values


def test_by_default_face_match_scales_like_the_others() -> None:
    manifests = render("default")
    assert of_kind(manifests, "ScaledObject") == []


def test_queue_scaling_counts_the_jobs_and_replaces_the_cpu_autoscaler() -> None:
    manifests = render_values(
        {
            "faceMatchQueueScaling": {"enabled": True, "maxReplicas": 8, "jobsPerReplica": 4},
            "services": {"face-match": {"autoscaling": {"enabled": True}}},
        }
    )
    scaled = find(manifests, "ScaledObject", "face-match").doc
    deployment = find(manifests, "Deployment", "face-match")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment.name
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 8)
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert "fm_jobs" in trigger["metadata"]["query"]
    assert trigger["metadata"]["targetQueryValue"] == "4"
    env = {
        e["name"]
        for c in deployment.doc["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
    }
    assert trigger["metadata"]["connectionFromEnv"] in env
    assert not [
        h for h in of_kind(manifests, "HorizontalPodAutoscaler") if h.component == "face-match"
    ]


def test_inverted_replica_bounds_fail_the_render() -> None:
    with pytest.raises(HelmRenderError, match="minReplicas 5 is above maxReplicas 2"):
        render_values(
            {"faceMatchQueueScaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}
        )


def test_only_face_match_and_kyc_tier_may_reach_https_endpoints() -> None:
    """face-match for its callbacks and S3, kyc-tier for the partners'
    webhooks (networkPolicy.webhooks); no other component."""
    from tests.chart.test_network import Allowed, external, pod_labels, policies_for
    from tests.support.chart import merged_values

    manifests = render("default")
    labels = pod_labels(manifests)
    backend = merged_values("default")["networkPolicy"]["backends"]["faceMatchCallbackSigningKey"]
    reaching = set()
    for component in labels:
        for policy in policies_for(manifests, labels[component]):
            if external(backend) in Allowed(policy.doc).egress_external:
                reaching.add(component)
    assert reaching == {"face-match", "kyc-tier"}
