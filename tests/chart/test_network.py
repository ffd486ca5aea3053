"""NetworkPolicies: default deny, and allow-lists that equal the declared call
graph (libs/identity_runtime/mesh.py `calls` and GATEWAY_CALLS), plus only the
documented extras: DNS, the database for the pods holding its URL, Redis for
the gateway when it holds the Redis URL, Triton for its clients, the OTLP
collector, the ingress controller, Prometheus and the model store; and the
internal callers each service lists (networkPolicy.internalCallers)."""

from __future__ import annotations

from typing import Any

import pytest

from identity_runtime import mesh
from tests.support.chart import (
    RELEASE,
    VALUES_FILES,
    Manifest,
    find,
    merged_values,
    of_kind,
    pod_workloads,
    render,
    render_values,
)

COMPONENT = "app.kubernetes.io/component"
SERVICE_PORT = 50051


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"unsupported selector {selector}"
    return selector.get("matchLabels", {}).items() <= labels.items()


def peer_component(peer: dict[str, Any]) -> str | None:
    """The chart component a same-namespace pod peer names, else None."""
    if set(peer) == {"podSelector"}:
        labels = peer["podSelector"]["matchLabels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        return labels[COMPONENT]
    return None


def pod_labels(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    return {m.component: m.pod_labels for m in pod_workloads(manifests)}


def policies_for(manifests: list[Manifest], labels: dict[str, str]) -> list[Manifest]:
    return [
        p
        for p in of_kind(manifests, "NetworkPolicy")
        if selects(p.doc["spec"]["podSelector"], labels)
    ]


class Allowed:
    """What one component's policies allow: mesh edges and external rules."""

    def __init__(self, policy: dict[str, Any]):
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        self.egress_to: dict[str, set[int]] = {}
        self.egress_external: list[dict[str, Any]] = []
        self.ingress_from: dict[str, set[int]] = {}
        self.ingress_external: list[dict[str, Any]] = []
        for rule in spec.get("egress", []):
            ports = {p["port"] for p in rule["ports"]}
            peers = rule.get("to", [])
            components = [peer_component(p) for p in peers]
            if peers and all(components):
                for component in components:
                    self.egress_to.setdefault(component, set()).update(ports)
            else:
                assert not any(components), f"mixed rule {rule}"
                self.egress_external.append(rule)
        for rule in spec.get("ingress", []):
            ports = {p["port"] for p in rule["ports"]}
            peers = rule.get("from", [])
            components = [peer_component(p) for p in peers]
            if peers and all(components):
                for component in components:
                    self.ingress_from.setdefault(component, set()).update(ports)
            else:
                assert not any(components), f"mixed rule {rule}"
                self.ingress_external.append(rule)


def external(rule_source: dict[str, Any]) -> dict[str, Any]:
    """A values egress entry as the rule the chart renders."""
    rule: dict[str, Any] = {"ports": rule_source["ports"]}
    if rule_source["to"]:
        rule["to"] = rule_source["to"]
    return rule


def holds_secret(values: dict[str, Any], component: str, backend: str) -> bool:
    """Whether the component holds a Secret reaching `backend` (the Secret of
    that name, or one whose `backend` names it, like auditDatabase)."""
    settings = values["gateway"] if component == "gateway" else values["services"][component]
    held = {*settings["secretEnv"].values(), *settings["secretFiles"].values()}
    return any((values["secrets"].get(s) or {}).get("backend", s) == backend for s in held)


def expected_calls(values: dict[str, Any]) -> dict[str, set[str]]:
    """The declared call graph among what this release deploys."""
    calls = {s.name: set(s.calls) for s in mesh.SERVICES}
    if values["gateway"]["enabled"]:
        calls["gateway"] = set(mesh.GATEWAY_CALLS)
    if values["gateway"]["enabled"] and values["tests"]["enabled"]:
        # The helm test's smoke pod calls the gateway.
        calls["smoke-test"] = {"gateway"}
    if values["triton"]["enabled"]:
        calls["triton"] = set()
        for client in values["triton"]["clients"]:
            calls[client].add("triton")
    return calls


values_files = pytest.mark.parametrize(
    "values_name", [n for n in VALUES_FILES if n != "ci/minimal-values.yaml"]
)


def test_policies_are_off_only_where_disabled() -> None:
    assert merged_values("ci/minimal-values.yaml")["networkPolicy"]["enabled"] is False
    assert not of_kind(render("ci/minimal-values.yaml"), "NetworkPolicy")
    for name in VALUES_FILES:
        if merged_values(name)["networkPolicy"]["enabled"]:
            assert of_kind(render(name), "NetworkPolicy"), name


@values_files
def test_every_pod_is_denied_by_default_and_has_exactly_one_allow_list(values_name: str) -> None:
    manifests = render(values_name)
    (deny,) = [p for p in of_kind(manifests, "NetworkPolicy") if p.name.endswith("-default-deny")]
    assert set(deny.doc["spec"]) == {"podSelector", "policyTypes"}
    assert deny.doc["spec"]["policyTypes"] == ["Ingress", "Egress"]
    for component, labels in pod_labels(manifests).items():
        selected = policies_for(manifests, labels)
        assert deny in selected, component
        assert len(selected) == 2, f"{component}: {[p.name for p in selected]}"


@values_files
def test_mesh_allow_lists_equal_the_declared_call_graph(values_name: str) -> None:
    manifests = render(values_name)
    values = merged_values(values_name)
    labels = pod_labels(manifests)
    calls = expected_calls(values)
    allowed = {}
    for component in calls:
        (policy,) = [
            p
            for p in policies_for(manifests, labels[component])
            if not p.name.endswith("-default-deny")
        ]
        allowed[component] = Allowed(policy.doc)
    ports = {s.name: SERVICE_PORT for s in mesh.SERVICES} | {
        "gateway": mesh.GATEWAY_DEFAULT_PORT,
        "triton": values["triton"]["ports"]["grpc"],
    }
    for caller, callees in calls.items():
        assert set(allowed[caller].egress_to) == callees, f"{caller} egress"
        for callee in callees:
            assert allowed[caller].egress_to[callee] == {ports[callee]}, f"{caller} -> {callee}"
    for callee in calls:
        callers = {caller for caller, callees in calls.items() if callee in callees}
        assert set(allowed[callee].ingress_from) == callers, f"{callee} ingress"
        for caller in callers:
            assert allowed[callee].ingress_from[caller] == {ports[callee]}
    # The rendered peers name real pods of this release.
    for component, allow in allowed.items():
        for peer in list(allow.egress_to) + list(allow.ingress_from):
            assert peer in labels, f"{component} names {peer}, which this release does not deploy"


@values_files
def test_external_traffic_is_exactly_the_documented_extras(values_name: str) -> None:
    manifests = render(values_name)
    values = merged_values(values_name)
    network = values["networkPolicy"]
    labels = pod_labels(manifests)
    dns = {"to": network["dns"]["to"], "ports": network["dns"]["ports"]}
    for component in labels:
        (policy,) = [
            p
            for p in policies_for(manifests, labels[component])
            if not p.name.endswith("-default-deny")
        ]
        allow = Allowed(policy.doc)
        expected_egress = [dns]
        expected_ingress = []
        if component in ("gateway", *[s.name for s in mesh.SERVICES]):
            for secret, backend in network["backends"].items():
                if holds_secret(values, component, secret):
                    expected_egress.append(external(backend))
            if values["observability"]["otlpEndpoint"]:
                expected_egress.append(external(network["otlp"]))
            # kyc-tier delivers the partners' webhooks (black-box probe 7: no
            # egress but DNS, the database and the mesh, so none arrived).
            if component == "kyc-tier":
                expected_egress.append(external(network["webhooks"]))
            # Prometheus scrapes every component's metrics port.
            metrics_rule: dict[str, Any] = {
                "ports": [{"port": values["observability"]["metricsPort"], "protocol": "TCP"}]
            }
            if network["metricsFrom"]:
                metrics_rule["from"] = network["metricsFrom"]
            expected_ingress.append(metrics_rule)
        internal = network["internalCallers"].get(component)
        if internal:
            expected_ingress.append(
                {"ports": [{"port": SERVICE_PORT, "protocol": "TCP"}], "from": internal}
            )
        if component == "gateway":
            rule: dict[str, Any] = {
                "ports": [{"port": mesh.GATEWAY_DEFAULT_PORT, "protocol": "TCP"}]
            }
            if network["gatewayFrom"]:
                rule["from"] = network["gatewayFrom"]
            expected_ingress.append(rule)
        if component == "migrations" or (component or "").startswith("retention-"):
            expected_egress.append(external(network["backends"]["database"]))
        if component == "triton":
            if values["triton"]["modelRepository"]["sync"]["enabled"]:
                expected_egress.append(external(network["modelSync"]))
            rule = {"ports": [{"port": values["triton"]["ports"]["metrics"], "protocol": "TCP"}]}
            if network["metricsFrom"]:
                rule["from"] = network["metricsFrom"]
            expected_ingress.append(rule)
        assert sorted(map(repr, allow.egress_external)) == sorted(map(repr, expected_egress)), (
            component
        )
        assert sorted(map(repr, allow.ingress_external)) == sorted(map(repr, expected_ingress)), (
            component
        )


def test_database_egress_is_for_the_pods_holding_the_database_url() -> None:
    manifests = render("production")
    labels = pod_labels(manifests)
    database = merged_values("production")["networkPolicy"]["backends"]["database"]
    with_database = set()
    for component in labels:
        (policy,) = [
            p
            for p in policies_for(manifests, labels[component])
            if not p.name.endswith("-default-deny")
        ]
        if external(database) in Allowed(policy.doc).egress_external:
            with_database.add(component)
    assert with_database == {
        "kyc-tier",
        "liveness",
        "matching",
        "audit",
        "face-match",
        "migrations",
        # The retention CronJobs (identity retention sweep --service ...).
        "retention-kyc-tier",
        "retention-liveness",
        "retention-matching",
        "retention-audit",
    }


def test_the_graph_check_fails_on_an_extra_edge() -> None:
    """Guard against a vacuous comparison: an unexpected callee is noticed."""
    policy = find(render("default"), "NetworkPolicy", "audit").doc
    policy["spec"]["egress"].append(
        {
            "to": [
                {
                    "podSelector": {
                        "matchLabels": {
                            "app.kubernetes.io/instance": RELEASE,
                            COMPONENT: "matching",
                        }
                    }
                }
            ],
            "ports": [{"port": 50051, "protocol": "TCP"}],
        }
    )
    assert set(Allowed(policy).egress_to) == {"matching"} != set(mesh.AUDIT.calls)


LEDGER = [
    {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ledger"}},
    }
]


def internal_ingress(manifests: list[Manifest], component: str) -> list[dict[str, Any]]:
    labels = pod_labels(manifests)[component]
    (policy,) = [p for p in policies_for(manifests, labels) if not p.name.endswith("-default-deny")]
    return [
        rule
        for rule in Allowed(policy.doc).ingress_external
        if rule["ports"] == [{"port": SERVICE_PORT, "protocol": "TCP"}]
    ]


def test_internal_callers_reach_exactly_the_services_that_list_them() -> None:
    manifests = render_values({"networkPolicy": {"internalCallers": {"kyc-tier": LEDGER}}})
    assert internal_ingress(manifests, "kyc-tier") == [
        {"ports": [{"port": SERVICE_PORT, "protocol": "TCP"}], "from": LEDGER}
    ]
    for component in pod_labels(manifests):
        if component not in ("kyc-tier", "gateway", "triton", "migrations"):
            assert internal_ingress(manifests, component) == [], component
    # Without the setting, kyc-tier's port admits its mesh callers only.
    assert internal_ingress(render("default"), "kyc-tier") == []
    # The production example lets the payments ledger call kyc-tier.
    production = merged_values("production")["networkPolicy"]["internalCallers"]
    assert internal_ingress(render("production"), "kyc-tier")[0]["from"] == production["kyc-tier"]


def test_internal_callers_must_name_a_service_and_be_network_policy_peers() -> None:
    with pytest.raises(Exception, match="internalCallers"):
        render_values({"networkPolicy": {"internalCallers": {"kyc-tier": [{}]}}})
    with pytest.raises(Exception, match="kyc_tier"):  # the schema: component names
        render_values({"networkPolicy": {"internalCallers": {"kyc_tier": LEDGER}}})
    with pytest.raises(Exception, match=r"internalCallers\.kyc-tir: no such service"):
        render_values({"networkPolicy": {"internalCallers": {"kyc-tir": LEDGER}}})
