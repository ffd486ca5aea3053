"""The chart renders with real Helm for every values file we ship, lints
clean, and every manifest is valid Kubernetes for the oldest version the chart
supports and the newest one kubernetes-validate knows."""

from __future__ import annotations

import tomllib

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from packaging.version import Version

from tests.support import REPO_ROOT
from tests.support.chart import CHART, NAMESPACE, VALUES_FILES, kubernetes_errors, render, values_of

# Chart.yaml's kubeVersion floor, and the newest schemas bundled with the
# pinned kubernetes-validate.
OLDEST = "1.29.0"
NEWEST = kubernetes_validate.utils.latest_version()
# Custom resources: no upstream schema; checked field by field below.
CUSTOM_KINDS = {
    "monitoring.coreos.com/v1": {"ServiceMonitor", "PodMonitor", "PrometheusRule"},
    "keda.sh/v1alpha1": {"ScaledObject"},
}


def chart_yaml() -> dict:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def test_validation_covers_a_current_kubernetes() -> None:
    assert Version(NEWEST) >= Version("1.35"), f"kubernetes-validate only knows up to {NEWEST}"
    assert chart_yaml()["kubeVersion"] == f">={OLDEST}-0"


def test_app_version_is_the_projects_version() -> None:
    with open(REPO_ROOT / "pyproject.toml", "rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    assert chart_yaml()["appVersion"] == version


def test_ci_values_files_exist() -> None:
    assert [name for name in VALUES_FILES if name.startswith("ci/")], (
        "charts/identity-platform/ci/ has no values files"
    )


@pytest.mark.parametrize("values_name", list(VALUES_FILES))
def test_every_manifest_validates_against_kubernetes_schemas(values_name: str) -> None:
    manifests = render(values_name)
    assert manifests
    problems = []
    for manifest in manifests:
        if manifest.kind in CUSTOM_KINDS.get(manifest.doc["apiVersion"], set()):
            continue
        for version in (OLDEST, NEWEST):
            try:
                errors = kubernetes_errors(manifest.doc, version)
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors = [exc.message]
            problems += [
                f"{manifest.template} {manifest.kind}/{manifest.name} @{version}: {e}"
                for e in errors
            ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("values_name", list(VALUES_FILES))
def test_custom_resources_are_well_formed(values_name: str) -> None:
    manifests = render(values_name)
    monitors = [m for m in manifests if m.kind == "ServiceMonitor"]
    services = {m.name: m for m in manifests if m.kind == "Service"}
    for monitor in monitors:
        spec = monitor.doc["spec"]
        assert set(spec) == {"namespaceSelector", "selector", "endpoints"}
        assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        selected = [
            s
            for s in services.values()
            if spec["selector"]["matchLabels"].items() <= s.doc["metadata"]["labels"].items()
        ]
        assert [s.component for s in selected] == ["triton"]
        port_names = {p["name"] for p in selected[0].doc["spec"]["ports"]}
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval"}
            assert endpoint["port"] in port_names


@pytest.mark.parametrize("values_name", list(VALUES_FILES))
def test_helm_lint_is_clean(values_name: str) -> None:
    for kube_version in (f"v{OLDEST}", f"v{NEWEST}"):
        report = helm.lint(
            CHART,
            values_of(values_name),
            strict=True,
            namespace=NAMESPACE,
            kube_version=kube_version,
        )
        assert report["errors"] == [], report
        assert report["messages"] == [], report


def test_the_kubernetes_validation_catches_mistakes() -> None:
    deployment = next(m for m in render("default") if m.kind == "Deployment")
    assert kubernetes_errors(deployment.doc, NEWEST) == []
    container = deployment.doc["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["grpc"]["port"] = "grpc"  # gRPC probes take a number only
    container["securityContext"]["runAsUserName"] = "identity"  # not a field
    errors = kubernetes_errors(deployment.doc, NEWEST)
    assert any("readinessProbe.grpc.port" in e for e in errors), errors
    assert any("runAsUserName" in e for e in errors), errors
