"""Rendering the Helm chart with Helm's own engine (helm-python-sdk), offline.

`render(name)` renders the chart for one of VALUES_FILES ("default", the
production example, every ci/*.yaml) once per session; `render_values(values)`
renders arbitrary overrides. Manifests come back parsed, with the template
that produced them.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import helm_python as helm
import yaml

from tests.support import REPO_ROOT

CHART = REPO_ROOT / "charts" / "identity-platform"
PRODUCTION_EXAMPLE = CHART / "examples" / "production-id-jkt-1.yaml"
RELEASE = "identity"
NAMESPACE = "identity-platform"

VALUES_FILES: dict[str, Path | None] = {
    "default": None,
    "production": PRODUCTION_EXAMPLE,
    **{f"ci/{path.name}": path for path in sorted((CHART / "ci").glob("*.yaml"))},
}

# The project's gRPC services and the gateway (the chart's "components"),
# Triton, the migrations Job, the retention CronJobs and the helm test's Pod.
POD_KINDS = ("Deployment", "Job", "CronJob", "Pod")


@dataclass(frozen=True)
class Manifest:
    template: str
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def name(self) -> str:
        return self.doc["metadata"]["name"]

    @property
    def component(self) -> str | None:
        return self.doc["metadata"].get("labels", {}).get("app.kubernetes.io/component")

    @property
    def pod_template(self) -> dict[str, Any]:
        spec = self.doc["spec"]
        if self.kind == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        return spec["template"]

    @property
    def pod_spec(self) -> dict[str, Any]:
        return self.doc["spec"] if self.kind == "Pod" else self.pod_template["spec"]

    @property
    def pod_labels(self) -> dict[str, str]:
        metadata = self.doc["metadata"] if self.kind == "Pod" else self.pod_template["metadata"]
        return metadata["labels"]


def load_tool(name: str) -> ModuleType:
    """A script of tools/ as a module (tools/ is not a package)."""
    path = REPO_ROOT / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"tools_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def values_of(name: str) -> dict[str, Any]:
    path = VALUES_FILES[name]
    return {} if path is None else (yaml.safe_load(path.read_text()) or {})


def merged_values(name: str) -> dict[str, Any]:
    """What an install with this values file really uses (defaults coalesced)."""
    return chart().merge_values(values_of(name))


def parse(rendered: dict[str, str]) -> list[Manifest]:
    manifests = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                manifests.append(Manifest(template, doc))
    return manifests


def render_values(values: dict[str, Any], chart_handle: helm.Chart | None = None) -> list[Manifest]:
    """Render with these overrides (raises HelmValuesError / HelmRenderError)."""
    handle = chart_handle or chart()
    # JSON round trip: helm-python-sdk sends JSON; YAML anchors become copies.
    values = json.loads(json.dumps(values))
    return parse(handle.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True))


def render_raw(values: dict[str, Any], api_versions: tuple[str, ...] = ()) -> dict[str, str]:
    """Template -> text (NOTES.txt included), with the cluster serving
    `api_versions` (as `helm template --api-versions`)."""
    from helm_python import _native

    options = {"name": RELEASE, "namespace": NAMESPACE, "is_install": True}
    if api_versions:
        options["api_versions"] = list(api_versions)
    rendered = _native.call_string(
        "helm_render", chart()._raw(), json.dumps(values), json.dumps(options)
    )
    return dict(json.loads(rendered))


def render_with_apis(values: dict[str, Any], *api_versions: str) -> list[Manifest]:
    return parse(render_raw(values, api_versions))


@functools.cache
def _render_cached(name: str) -> tuple[Manifest, ...]:
    return tuple(render_values(values_of(name)))


def render(name: str) -> list[Manifest]:
    return [Manifest(m.template, copy.deepcopy(m.doc)) for m in _render_cached(name)]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.kind == kind]


def find(manifests: list[Manifest], kind: str, component: str) -> Manifest:
    found = [m for m in manifests if m.kind == kind and m.component == component]
    assert len(found) == 1, f"expected one {kind} for {component}, found {[m.name for m in found]}"
    return found[0]


def pod_workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m.kind in POD_KINDS]


def containers(pod_spec: dict[str, Any], init: bool = True) -> Iterator[dict[str, Any]]:
    yield from pod_spec.get("containers", [])
    if init:
        yield from pod_spec.get("initContainers", [])


def container_env(manifests: list[Manifest], deployment: Manifest) -> dict[str, dict[str, Any]]:
    """Every variable a component's main container gets: name -> {"value": ...}
    from its ConfigMap, or {"secretKeyRef": ...}."""
    (container,) = deployment.pod_spec["containers"]
    env: dict[str, dict[str, Any]] = {}
    configmaps = {m.name: m for m in of_kind(manifests, "ConfigMap")}
    for source in container.get("envFrom", []):
        data = configmaps[source["configMapRef"]["name"]].doc.get("data", {})
        for key, value in data.items():
            env[key] = {"value": value}
    for item in container.get("env", []):
        env[item["name"]] = (
            item.get("valueFrom", {}) if "valueFrom" in item else {"value": item["value"]}
        )
    return env


def mesh_components() -> list[Any]:
    """tools/chart.py's view of the mesh: services then the gateway, with settings classes."""
    return load_tool("chart").components()


@functools.cache
def _kubernetes_definitions(schema_dir: str) -> Any:
    from kubernetes_validate import utils

    return utils.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/_definitions.json", schema_dir
    )


@functools.cache
def _kubernetes_validator(kind: str, api_version: str, version: str) -> Any:
    """kubernetes_validate.validate's validator (strict schemas), built once per
    kind and version instead of re-reading the definitions for every manifest."""
    import re

    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    schema_dir = f"v{version}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", version
        )
    except FileNotFoundError:
        raise utils.SchemaNotFoundError(
            kind=kind, version=version, api_version=api_version
        ) from None
    registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(_kubernetes_definitions(schema_dir)) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def kubernetes_errors(doc: dict[str, Any], version: str) -> list[str]:
    """Problems of one manifest against Kubernetes `version`'s strict schema."""
    validator = _kubernetes_validator(doc["kind"], doc["apiVersion"], version)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in sorted(
            validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))
        )
    ]
