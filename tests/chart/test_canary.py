"""A canary of the inference services (values `canary`): a second Deployment of
liveness or embedding runs the candidate's settings with TRACK=canary, its pods
are behind the service's headless Service (so it takes its share of the calls by
pod count), and the automatic-rollback alert ships in the PrometheusRule."""

from __future__ import annotations

from typing import Any

import pytest
from helm_python.errors import HelmRenderError, HelmValuesError

from tests.support.chart import (
    Manifest,
    container_env,
    find,
    kubernetes_errors,
    of_kind,
    render,
    render_values,
)

CANDIDATE = {"PAD_MODELS": "minifasnet-v2", "PAD_THRESHOLD": 0.55}
TRACK = "identity-platform/track"


def canary_values(**extra: Any) -> dict[str, Any]:
    return {
        "canary": {"liveness": {"enabled": True, "replicas": 2, "config": CANDIDATE}},
        "services": {"liveness": {"config": {"PAD_SHADOW_MODELS": "minifasnet-v1se"}}},
        **extra,
    }


def deployments(manifests: list[Manifest], component: str) -> dict[str, Manifest]:
    found = [m for m in of_kind(manifests, "Deployment") if m.component == component]
    return {m.doc["metadata"]["labels"].get(TRACK, "stable"): m for m in found}


def test_nothing_of_a_canary_renders_by_default() -> None:
    manifests = render("default")
    assert not [m for m in manifests if m.name.endswith("-canary")]
    assert not [m for m in manifests if TRACK in m.doc["metadata"].get("labels", {})]


def test_the_canary_runs_the_candidate_beside_stable() -> None:
    manifests = render_values(canary_values())
    tracks = deployments(manifests, "liveness")
    assert set(tracks) == {"stable", "canary"}
    stable, canary = tracks["stable"], tracks["canary"]
    assert canary.name == f"{stable.name}-canary"
    assert canary.template.endswith("templates/canary.yaml")
    assert canary.doc["spec"]["replicas"] == 2
    stable_env = container_env(manifests, stable)
    canary_env = container_env(manifests, canary)
    # The candidate's settings over the service's own; the rest is the same.
    assert canary_env["LIVENESS_PAD_MODELS"] == {"value": "minifasnet-v2"}
    assert canary_env["LIVENESS_PAD_THRESHOLD"] == {"value": "0.55"}
    assert canary_env["LIVENESS_TRACK"] == {"value": "canary"}
    assert "LIVENESS_PAD_MODELS" not in stable_env and "LIVENESS_TRACK" not in stable_env
    differing = {
        k for k in stable_env.keys() | canary_env.keys() if stable_env.get(k) != canary_env.get(k)
    }
    assert differing == {"LIVENESS_PAD_MODELS", "LIVENESS_PAD_THRESHOLD", "LIVENESS_TRACK"}
    # Its own ConfigMap, so its pods roll when the candidate changes.
    annotations = [d.doc["spec"]["template"]["metadata"]["annotations"] for d in (stable, canary)]
    assert annotations[0]["checksum/config"] != annotations[1]["checksum/config"]
    # Everything else of the pod is stable's (probes, security, volumes, ports).
    stable_pod, canary_pod = stable.pod_spec, canary.pod_spec
    for key in ("securityContext", "volumes", "serviceAccountName", "affinity"):
        assert canary_pod[key] == stable_pod[key], key
    (stable_container,) = stable_pod["containers"]
    (canary_container,) = canary_pod["containers"]
    for key in ("ports", "readinessProbe", "securityContext", "resources", "command", "image"):
        assert canary_container[key] == stable_container[key], key
    # No autoscaler or disruption budget of its own: a fixed, small share.
    assert [
        h.name for h in of_kind(manifests, "HorizontalPodAutoscaler") if h.component == "liveness"
    ] == [stable.name]
    assert all(errors == [] for errors in [kubernetes_errors(canary.doc, "1.29.0")])


def test_the_headless_service_sends_the_canary_its_share_of_calls() -> None:
    manifests = render_values(canary_values())
    tracks = deployments(manifests, "liveness")
    service = find(manifests, "Service", "liveness").doc
    assert service["spec"]["clusterIP"] == "None"
    selector = service["spec"]["selector"].items()
    for deployment in tracks.values():
        pod_labels = deployment.doc["spec"]["template"]["metadata"]["labels"]
        assert selector <= pod_labels.items(), deployment.name
    # The canary's own selector never picks stable pods (its own ReplicaSets only).
    canary_selector = tracks["canary"].doc["spec"]["selector"]["matchLabels"]
    assert canary_selector[TRACK] == "canary"
    assert TRACK not in tracks["stable"].doc["spec"]["template"]["metadata"]["labels"]
    # Network policies select by component: the canary's pods are let in and out alike.
    for policy in of_kind(manifests, "NetworkPolicy"):
        match = policy.doc["spec"]["podSelector"].get("matchLabels", {}).items()
        labels = [d.doc["spec"]["template"]["metadata"]["labels"].items() for d in tracks.values()]
        assert (match <= labels[0]) == (match <= labels[1]), policy.name


def test_an_embedding_canary_and_the_rollback_rule_in_the_prometheus_rule() -> None:
    manifests = render_values(
        {
            "canary": {"embedding": {"enabled": True, "replicas": 1, "config": {}}},
            "observability": {"prometheusRule": {"enabled": True}},
        }
    )
    tracks = deployments(manifests, "embedding")
    assert set(tracks) == {"stable", "canary"}
    assert container_env(manifests, tracks["canary"])["EMBEDDING_TRACK"] == {"value": "canary"}
    assert set(deployments(manifests, "liveness")) == {"stable"}
    (rule,) = of_kind(manifests, "PrometheusRule")
    rules = [r for g in rule.doc["spec"]["groups"] for r in g["rules"]]
    (rollback,) = [r for r in rules if r.get("alert") == "IdentityCanaryRegression"]
    assert rollback["labels"] == {"severity": "ticket", "action": "rollback", "track": "canary"}
    assert 'track="canary"' in rollback["expr"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"canary": {"liveness": {"enabled": True, "replicas": 1, "config": {"NOPE": 1}}}},
            "LIVENESS_NOPE is not a setting of liveness",
        ),
        (
            {"canary": {"liveness": {"enabled": True, "replicas": 1, "config": {"PORT": 1}}}},
            "set by the chart",
        ),
    ],
)
def test_a_wrong_candidate_setting_fails_the_render_naming_it(values, message: str) -> None:
    with pytest.raises(HelmRenderError) as caught:
        render_values(values)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "values",
    [
        {"canary": {"kyc-tier": {"enabled": True, "replicas": 1, "config": {}}}},
        {"canary": {"liveness": {"enabled": True, "replicas": 0, "config": {}}}},
    ],
)
def test_canaries_are_for_the_inference_services_only(values) -> None:
    with pytest.raises(HelmValuesError):
        render_values(values)
