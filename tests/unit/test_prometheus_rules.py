"""The Prometheus rules (deploy/prometheus): promtool accepts them, its unit
tests prove each alert fires on series that break it and stays quiet on series
that do not, every alert names a runbook that exists, and every expression
reads only metrics the platform exports or rules that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from identity_runtime import metrics
from tests.support import REPO_ROOT
from tests.support.promql import referenced_names

RULES = REPO_ROOT / "deploy" / "prometheus"
RULE_FILES = (RULES / "recording-rules.yml", RULES / "alerts.yml")
RUNBOOK_PREFIX = "https://github.com/identity-platform/identity-platform/blob/main/docs/runbooks/"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: tools/dev installs Debian's prometheus package"
    return found


def rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return rules(RULES / "alerts.yml")


def recorded() -> set[str]:
    return {rule["record"] for path in RULE_FILES for rule in rules(path) if "record" in rule}


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    tests = sorted((RULES / "tests").glob("*.test.yml"))
    assert tests
    result = subprocess.run(
        [promtool(), "test", "rules", *(t.name for t in tests)],
        cwd=RULES / "tests",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_each_alert_has_a_test_that_fires_and_one_that_stays_quiet() -> None:
    seen: dict[str, set[str]] = {}
    for path in (RULES / "tests").glob("*.test.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                kind = "fires" if check.get("exp_alerts") else "quiet"
                seen.setdefault(check["alertname"], set()).add(kind)
    for alert in alerts():
        assert seen.get(alert["alert"]) == {"fires", "quiet"}, alert["alert"]


def test_seed_000s_seven_alerts_are_there() -> None:
    names = {alert["alert"] for alert in alerts()}
    assert {
        "IdentityVerificationSuccessRateLow",
        "IdentityProcessingTimeHigh",
        "IdentityLivenessRejectionHigh",
        "IdentityRegistryLatencyHigh",
        "IdentityCircuitBreakerOpen",
        "IdentityEncryptionFailures",
        "IdentityAuditWriteFailures",
    } <= names


def test_every_alert_is_page_or_ticket_with_a_runbook_that_exists() -> None:
    for alert in alerts():
        assert alert["labels"]["severity"] in ("page", "ticket"), alert["alert"]
        url = alert["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_PREFIX), url
        page = REPO_ROOT / "docs" / "runbooks" / url.removeprefix(RUNBOOK_PREFIX)
        assert page.is_file(), f"{alert['alert']}: {page} does not exist"
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]


def test_the_slos_have_page_and_ticket_burn_rate_alerts() -> None:
    by_slo: dict[str, set[str]] = {}
    for alert in alerts():
        slo = alert["labels"].get("slo")
        if slo:
            by_slo.setdefault(slo, set()).add(alert["labels"]["severity"])
            # Multi-window: every burn-rate alert confirms a long window with a short one.
            windows = set(re.findall(r"burnrate(\d+[mh])", alert["expr"]))
            assert len(windows) >= 2, alert["alert"]
    assert set(by_slo) == {"stepup_availability", "stepup_latency", "template_store_availability"}
    assert all(severities == {"page", "ticket"} for severities in by_slo.values())


# Series Prometheus writes itself for each scrape target (1 scraped, 0 failed).
SCRAPE_SERIES = {"up"}


def test_every_expression_reads_exported_metrics_or_recorded_rules() -> None:
    known = metrics.exported_names() | recorded() | SCRAPE_SERIES
    for path in RULE_FILES:
        for rule in rules(path):
            unknown = referenced_names(rule["expr"]) - known
            assert not unknown, f"{rule.get('record') or rule.get('alert')}: {sorted(unknown)}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le) (rate(a_bucket{route="/x",le="1.0"}[5m]))', {"a_bucket"}),
        ("abs(b:c:d - b:c:d offset 7d) > 0.05", {"b:c:d"}),
        ("x and on() sum(y) > 0.05 or vector(1)", {"x", "y"}),
        ("max by (job, target) (z) == 2", {"z"}),
    ],
)
def test_referenced_names_finds_the_series_of_an_expression(expr: str, names: set[str]) -> None:
    assert referenced_names(expr) == names


# `increase(name{matchers}[window])` in an expression.
_INCREASE = re.compile(r"increase\(\s*([A-Za-z_:][\w:]*)\s*(?:\{([^}]*)\})?\s*\[")
_MATCHER = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def _paging_on_any_increase() -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Alert -> the counters (and equality matchers) it reads with
    `increase()` and fires on `> 0` of, through the recorded rules it reads."""
    recorded_by_name = {
        rule["record"]: rule["expr"]
        for path in RULE_FILES
        for rule in rules(path)
        if "record" in rule
    }
    found: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for alert in alerts():
        expr = alert["expr"]
        if not re.search(r">\s*0(?![.\d])", expr):
            continue
        texts = [
            expr,
            *(recorded_by_name[n] for n in referenced_names(expr) & set(recorded_by_name)),
        ]
        for text in texts:
            for name, matchers in _INCREASE.findall(text):
                found.setdefault(alert["alert"], []).append(
                    (name, dict(_MATCHER.findall(matchers or "")))
                )
    return found


def _fresh_exposition() -> list[Any]:
    """The /metrics text of a process that has only imported the catalogue."""
    import sys

    from prometheus_client.parser import text_string_to_metric_families

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from identity_runtime import metrics; "
            "from prometheus_client import generate_latest; "
            "sys.stdout.write(generate_latest().decode())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [s for family in text_string_to_metric_families(result.stdout) for s in family.samples]


def test_counters_paged_on_any_increase_are_exported_at_zero_from_the_start() -> None:
    """Black-box probe 7 (D5): `identity_seal_failures_total` and the
    audit failure counters were born at their first increment, so
    `increase()` read 0 over the first burst and the page never fired."""
    paging = _paging_on_any_increase()
    assert {
        "IdentityEncryptionFailures",
        "IdentityAuditWriteFailures",
        "IdentityAuditChainBroken",
    } <= set(paging)
    samples = _fresh_exposition()
    # Counters of live objects (a circuit breaker's openings) are exported at
    # 0 by each object from its creation (tests/unit/test_circuit_breaker_opens.py).
    per_object = {f"{f.name}_total" for f in metrics.LIVE.describe() if f.type == "counter"}
    assert per_object == {"identity_circuit_breaker_opens_total"}
    for alert, selectors in paging.items():
        for name, matchers in selectors:
            if name in per_object:
                continue
            series = [s for s in samples if s.name == name]
            assert series, f"{alert}: {name} is not exported before its first increment"
            assert all(s.value == 0 for s in series), (name, series)
            assert any(matchers.items() <= s.labels.items() for s in series), (
                alert,
                name,
                matchers,
            )
            # Every label value the counter is incremented with starts at 0.
            values = {f"{c.describe()[0].name}_total": v for c, v in metrics.PREINITIALISED}
            assert {tuple(s.labels.values()) for s in series} == {(v,) for v in values[name]}


def _runbook_label_values() -> dict[str, set[str]]:
    """The label values the runbooks may name: those the code exports."""
    from identity_runtime import mesh
    from services.face_match import queue as face_match_queue
    from services.kyc_tier import outbox, recovery, webhook_outbox

    components = {s.name for s in mesh.SERVICES} | {mesh.GATEWAY}
    # The chart's own Triton Deployment (triton.enabled) is a component too.
    pods = components | {"triton"}
    return {
        "queue": {
            outbox.QUEUE,
            recovery.ErasureBacklog.queue,
            webhook_outbox.QUEUE,
            face_match_queue.QUEUE,
        },
        # identity_client_requests_total and identity_circuit_breaker_state:
        # the proto package; identity_rpc_requests_total: the mesh name.
        "target": {s.package for s in mesh.SERVICES},
        "service": {s.name for s in mesh.SERVICES},
        "job": components,
        "app.kubernetes.io/component": pods,
    }


def test_runbooks_query_only_metrics_and_label_values_that_exist() -> None:
    """Black-box probe 7 (D6, D7): the webhook runbook queried
    `queue="webhooks"` (the label is `webhook_deliveries`), and the
    circuit-breaker runbook put a breaker's `target` (`kyc_tier`) into
    `service=` and the chart's component label (`kyc-tier`)."""
    known = metrics.exported_names() | recorded() | {f.name for f in metrics.REGISTRY.collect()}
    allowed = _runbook_label_values()
    runbooks = sorted((REPO_ROOT / "docs" / "runbooks").glob("*.md"))
    assert runbooks
    for page in runbooks:
        text = page.read_text()
        names = set(
            re.findall(r"(?<![\w./-])(identity_\w+|(?:sli|slo|track|track_service):[\w:]+)", text)
        )
        # `slo:<slo>:burnrate...` placeholders are not names.
        names = {n for n in names if not n.endswith(":")}
        assert not names - known, f"{page.name}: {sorted(names - known)}"
        # PromQL matchers (quoted) and kubectl's label selectors.
        used = re.findall(r'(\w+)=~?"([^"]*)"', text)
        used += re.findall(r"(app\.kubernetes\.io/component)=([\w<>-]+)", text)
        for label, value in used:
            if label not in allowed:
                continue
            if "<" in value:
                # A placeholder spelled for the label: a breaker's `target`
                # (package) does not fill `service=` or a pod selector.
                package_spelled = value in ("<target>", "<package>")
                assert package_spelled == (label == "target"), f"{page.name}: {label}={value}"
            else:
                assert value in allowed[label], f"{page.name}: {label}={value}"


def test_the_target_down_alerts_watch_every_component_and_nothing_else() -> None:
    """Black-box probe 7 (D12): a hung matching was not scraped, its own SLI
    went empty and nothing paged. Every component the chart scrapes (job =
    its name) is watched by `up`; other jobs of a shared Prometheus are not."""
    from identity_runtime import mesh

    components = {s.name for s in mesh.SERVICES} | {mesh.GATEWAY}
    watching = [alert for alert in alerts() if "up" in referenced_names(alert["expr"])]
    assert {alert["alert"] for alert in watching} == {
        "IdentityComponentDown",
        "IdentityScrapeTargetDown",
    }
    for alert in watching:
        jobs = re.findall(r'up\{job=~"([^"]+)"\}', alert["expr"])
        assert len(jobs) == 1, alert["alert"]
        assert set(jobs[0].split("|")) == components, alert["alert"]
    assert {a["labels"]["severity"] for a in watching} == {"page", "ticket"}


def test_the_template_store_slo_is_measured_at_matchings_callers() -> None:
    """Black-box probe 7 (D12): measured from matching's own counter, the
    SLI was empty while matching was hung and no burn alert could fire."""
    for path in RULE_FILES:
        for rule in rules(path):
            if rule.get("record", "").startswith("slo:template_store_availability:error_ratio"):
                assert referenced_names(rule["expr"]) == {"identity_client_requests_total"}
                assert rule["expr"].count('target="matching"') == 2, rule["record"]
