"""The chart's observability: every component serves metrics on its metrics
port, the PodMonitor scrapes exactly those ports, the PrometheusRule carries
deploy/prometheus's rules, the dashboards render for Grafana's sidecar, and
every dashboard query reads only exported metrics or recorded rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from identity_runtime import metrics
from tests.support import REPO_ROOT
from tests.support.chart import (
    CHART,
    NAMESPACE,
    container_env,
    find,
    load_tool,
    merged_values,
    of_kind,
    render,
    render_values,
)
from tests.support.promql import referenced_names

RULES = REPO_ROOT / "deploy" / "prometheus"
DASHBOARDS = CHART / "files" / "dashboards"
DEFAULT_RUNBOOKS = "https://github.com/identity-platform/identity-platform/blob/main/docs/runbooks/"
ALL_ON = {
    "observability": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True, "runbookBaseUrl": "https://runbooks.bank.example/"},
        "dashboards": {"enabled": True},
    }
}


def rule_groups() -> list[dict[str, Any]]:
    return [
        group
        for name in ("recording-rules.yml", "alerts.yml")
        for group in yaml.safe_load((RULES / name).read_text())["groups"]
    ]


def recorded() -> set[str]:
    return {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}


def dashboard_exprs(path: Path) -> list[tuple[str, str]]:
    board = json.loads(path.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def test_the_chart_copies_of_the_rules_are_fresh() -> None:
    stale = load_tool("chart").stale()
    assert not stale, f"{stale}: run .venv/bin/python tools/chart.py generate"


@pytest.mark.parametrize("values_name", ["default", "production"])
def test_every_component_serves_metrics_on_its_metrics_port(values_name: str) -> None:
    manifests = render(values_name)
    port = merged_values(values_name)["observability"]["metricsPort"]
    deployments = [m for m in of_kind(manifests, "Deployment") if m.component != "triton"]
    assert deployments
    for deployment in deployments:
        (container,) = deployment.pod_spec["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == port, deployment.name
        env = container_env(manifests, deployment)
        metric_vars = [k for k in env if k.endswith("_METRICS_PORT")]
        assert len(metric_vars) == 1 and env[metric_vars[0]] == {"value": str(port)}
    # The metrics port is on no Service (the gateway's may be public).
    for service in of_kind(manifests, "Service"):
        ports = {p["port"] for p in service.doc["spec"]["ports"]}
        if service.component != "triton":
            assert port not in ports, service.name


def test_the_pod_monitor_scrapes_every_components_metrics_port() -> None:
    manifests = render_values(ALL_ON)
    (monitor,) = of_kind(manifests, "PodMonitor")
    spec = monitor.doc["spec"]
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert spec["jobLabel"] == "app.kubernetes.io/component"
    assert spec["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s"}
    ]
    selected = []
    for deployment in of_kind(manifests, "Deployment"):
        labels = deployment.doc["spec"]["template"]["metadata"]["labels"]
        matches = spec["selector"]["matchLabels"].items() <= labels.items() and all(
            labels.get(e["key"]) in e["values"] for e in spec["selector"]["matchExpressions"]
        )
        if matches:
            selected.append(deployment.component)
            names = {p["name"] for p in deployment.pod_spec["containers"][0]["ports"]}
            assert "metrics" in names
    components = {m.component for m in of_kind(manifests, "Deployment")} - {"triton"}
    assert sorted(selected) == sorted(components)
    # Without Triton there is no ServiceMonitor (nothing else serves on a Service).
    assert of_kind(manifests, "ServiceMonitor") == []


def test_prometheus_may_reach_the_metrics_ports_through_the_network_policies() -> None:
    manifests = render("default")
    values = merged_values("default")
    port = values["observability"]["metricsPort"]
    sources = values["networkPolicy"]["metricsFrom"]
    for deployment in of_kind(manifests, "Deployment"):
        if deployment.component == "triton":
            continue
        policy = find(manifests, "NetworkPolicy", deployment.component)
        rules = [
            rule
            for rule in policy.doc["spec"]["ingress"]
            if {"port": port, "protocol": "TCP"} in rule["ports"]
        ]
        assert len(rules) == 1, deployment.component
        assert rules[0]["from"] == sources


def test_the_prometheus_rule_carries_the_rules_with_the_runbook_base_url() -> None:
    manifests = render_values(ALL_ON)
    (rule,) = of_kind(manifests, "PrometheusRule")
    groups = rule.doc["spec"]["groups"]
    expected = json.loads(
        json.dumps(rule_groups()).replace(DEFAULT_RUNBOOKS, "https://runbooks.bank.example/")
    )
    assert groups == expected
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert alerts and all(
        a["annotations"]["runbook_url"].startswith("https://runbooks.bank.example/") for a in alerts
    )


def test_nothing_of_prometheus_or_grafana_renders_by_default() -> None:
    kinds = {m.kind for m in render("default")}
    assert not kinds & {"PodMonitor", "ServiceMonitor", "PrometheusRule"}
    assert not [m for m in of_kind(render("default"), "ConfigMap") if "dashboard" in m.name]


def test_the_dashboards_render_as_sidecar_config_maps() -> None:
    manifests = render("production")
    boards = [
        m
        for m in of_kind(manifests, "ConfigMap")
        if "grafana_dashboard" in m.doc["metadata"]["labels"]
    ]
    names = sorted(next(iter(m.doc["data"])) for m in boards)
    assert names == ["debug.json", "executive.json", "on-call.json"]
    for board in boards:
        assert board.doc["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert board.doc["metadata"]["annotations"] == {"grafana_folder": "Identity Platform"}
        ((filename, text),) = board.doc["data"].items()
        assert json.loads(text) == json.loads((DASHBOARDS / filename).read_text())


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.name)
def test_every_dashboard_query_reads_exported_metrics_or_recorded_rules(path: Path) -> None:
    known = metrics.exported_names() | recorded()
    queries = dashboard_exprs(path)
    assert queries
    for title, expr in queries:
        names = referenced_names(expr)
        assert names, f"{title}: reads no series"
        assert names <= known, f"{path.name} / {title}: {sorted(names - known)}"
    board = json.loads(path.read_text())
    assert board["uid"].startswith("identity-")
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
