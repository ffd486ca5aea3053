"""The chart and the services' settings classes agree.

The chart reads every setting name and the call graph from files/mesh.json,
which tools/chart.py generates from the code; these tests check that file is
fresh, and check the rendered manifests against the settings classes
themselves: every variable the chart sets is a setting of that component,
every required setting is set (from the ConfigMap or a Secret), and the
settings load. A component whose settings class declares nothing of its own
yet (its work has not landed) gets a warning per provisional name instead;
the first field it declares makes the check strict.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from identity_runtime import mesh
from identity_runtime.settings import SettingsError, env_name, load_settings
from tests.support.chart import (
    CHART,
    NAMESPACE,
    VALUES_FILES,
    container_env,
    find,
    load_tool,
    merged_values,
    of_kind,
    render,
    render_values,
)

chart_tool = load_tool("chart")
COMPONENTS = {c.name: c for c in chart_tool.components()}


def deployed(values: dict[str, Any]) -> list[str]:
    return [s.name for s in mesh.SERVICES] + (["gateway"] if values["gateway"]["enabled"] else [])


def setting_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def stand_in(variable: str) -> str:
    """A value for a setting the cluster reads from a Secret."""
    if variable.endswith("DATABASE_URL"):
        # A store in Jakarta (its host names AWS ap-southeast-3): production
        # services refuse one whose region is foreign or undeclared.
        return "postgresql://identity:secret@identity.c1.ap-southeast-3.rds.amazonaws.com:5432/identity"
    if "REDIS" in variable or "RATE_LIMIT_STORAGE" in variable:
        return "redis://:secret@redis.example:6379/0"
    return "s" * 64


def stand_in_keyring() -> str:
    return json.dumps({"primary": "k1", "keys": {"k1": base64.b64encode(b"k" * 32).decode()}})


def mount_volumes(deployment: Any, environ: dict[str, str], root: Path) -> dict[str, str]:
    """The environment as the container sees it once its volumes are mounted:
    paths under a volume mount are recreated below `root` (model directories
    as directories, files from Secrets as files holding a stand-in keyring)."""
    (container,) = deployment.pod_spec["containers"]
    mounts = sorted(
        (m["mountPath"] for m in container.get("volumeMounts", []) if m["mountPath"] != "/tmp"),
        key=len,
        reverse=True,
    )
    mounted = {}
    for variable, value in environ.items():
        mount = next((m for m in mounts if value == m or value.startswith(m + "/")), None)
        if mount is None:
            mounted[variable] = value
            continue
        local = root / value.lstrip("/")
        if value == mount:
            local.mkdir(parents=True, exist_ok=True)
        else:
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(stand_in_keyring())
        mounted[variable] = str(local)
    return mounted


def test_catalogue_and_settings_doc_are_fresh() -> None:
    stale = chart_tool.stale()
    assert not stale, (
        f"{[str(p) for p in stale]} are stale: run .venv/bin/python tools/chart.py generate"
    )


def test_catalogue_matches_the_mesh() -> None:
    catalogue = json.loads((CHART / "files" / "mesh.json").read_text())["components"]
    assert set(catalogue) == {s.name for s in mesh.SERVICES} | {"gateway"}
    for service in mesh.SERVICES:
        entry = catalogue[service.name]
        assert entry["prefix"] == service.env_prefix
        assert entry["calls"] == list(service.calls)
        assert entry["command"] == f"identity-{service.name}"
    assert catalogue["gateway"]["calls"] == list(mesh.GATEWAY_CALLS)
    assert catalogue["gateway"]["containerPort"] == mesh.GATEWAY_DEFAULT_PORT


# libpq's own variables, which the chart sets from dataStoreTls (the CA and
# client certificate of `sslmode=verify-full` URLs): not settings of ours.
LIBPQ_VARIABLES = {"PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"}


def chart_variables(values_name: str, name: str) -> dict[str, dict[str, Any]]:
    """The settings the chart gives a component (libpq's variables aside)."""
    manifests = render(values_name)
    env = container_env(manifests, find(manifests, "Deployment", name))
    return {k: v for k, v in env.items() if k not in LIBPQ_VARIABLES}


def unknown_variables(name: str, env: dict[str, Any]) -> list[str]:
    component = COMPONENTS[name]
    cls = component.settings_class
    known = (
        {env_name(component.env_prefix, field) for field in setting_names(cls)} if cls else set()
    )
    return sorted(set(env) - known)


@pytest.mark.parametrize("values_name", list(VALUES_FILES))
def test_every_variable_the_chart_sets_is_a_setting_and_the_settings_load(
    values_name: str, tmp_path: Path
) -> None:
    manifests = render(values_name)
    for name in deployed(merged_values(values_name)):
        component = COMPONENTS[name]
        env = chart_variables(values_name, name)
        prefix = component.env_prefix
        assert all(variable.startswith(f"{prefix}_") for variable in env), f"{name}: {sorted(env)}"
        cls = component.settings_class
        if component.declared:
            unknown = unknown_variables(name, env)
            assert not unknown, (
                f"{name}: the chart sets {unknown}, which {cls.__name__} does not declare"
            )
        if cls is None:
            continue
        environ = {
            variable: source["value"] if "value" in source else stand_in(variable)
            for variable, source in env.items()
        }
        environ = mount_volumes(find(manifests, "Deployment", name), environ, tmp_path / name)
        try:
            settings = load_settings(cls, prefix, environ)
        except SettingsError as exc:
            pytest.fail(f"{name} would not start with the chart's settings ({values_name}):\n{exc}")
        assert settings.port == int(environ[f"{prefix}_PORT"])


def test_provisional_settings_are_reported() -> None:
    """Names the chart uses for components whose settings have not landed yet:
    reported (one warning), and checked strictly as soon as they land."""
    provisional: dict[str, set[str]] = {}
    for values_name in VALUES_FILES:
        for name in deployed(merged_values(values_name)):
            if not COMPONENTS[name].declared:
                provisional.setdefault(name, set()).update(
                    unknown_variables(name, chart_variables(values_name, name))
                )
    for name in provisional:
        assert not COMPONENTS[name].declared
    if any(provisional.values()):
        listing = "; ".join(
            f"{name}: {', '.join(sorted(v))}" for name, v in sorted(provisional.items()) if v
        )
        warnings.warn(
            f"provisional settings, not declared by their classes yet: {listing}", stacklevel=1
        )


@pytest.mark.parametrize("values_name", list(VALUES_FILES))
def test_every_required_setting_is_set(values_name: str) -> None:
    manifests = render(values_name)
    for name in deployed(merged_values(values_name)):
        component = COMPONENTS[name]
        if component.settings_class is None:
            continue
        env = container_env(manifests, find(manifests, "Deployment", name))
        for field in dataclasses.fields(component.settings_class):
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                variable = env_name(component.env_prefix, field.name)
                assert variable in env, f"{name}: required {variable} is not set"
                if field.metadata.get("secret"):
                    assert "secretKeyRef" in env[variable], (
                        f"{name}: secret {variable} must come from a Secret"
                    )


@pytest.mark.parametrize("values_name", list(VALUES_FILES))
def test_address_settings_reach_the_callees_services(values_name: str) -> None:
    manifests = render(values_name)
    for name in deployed(merged_values(values_name)):
        component = COMPONENTS[name]
        env = container_env(manifests, find(manifests, "Deployment", name))
        for callee in component.calls:
            service = find(manifests, "Service", callee)
            (port,) = service.doc["spec"]["ports"]
            address = env[f"{component.env_prefix}_{mesh.BY_NAME[callee].env_prefix}_ADDRESS"][
                "value"
            ]
            assert address == f"{service.name}.{NAMESPACE}.svc.cluster.local:{port['port']}"


def test_settings_of_kyc_tier_are_declared_so_its_check_is_strict() -> None:
    # The strict branch above is exercised today, not only after the other work lands.
    assert COMPONENTS["kyc-tier"].declared


# Rendering refuses values that would not start: each case names the value to fix.


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"services": {"kyc-tier": {"config": {"NOT_A_SETTING": "x"}}}},
            "services.kyc-tier.config.NOT_A_SETTING: "
            "KYC_TIER_NOT_A_SETTING is not a setting of kyc-tier",
        ),
        (
            {"services": {"kyc-tier": {"secretEnv": {"NOT_A_SETTING": "database"}}}},
            "KYC_TIER_NOT_A_SETTING is not a setting of kyc-tier",
        ),
        (
            {
                "services": {
                    "kyc-tier": {
                        "config": {"API_KEY_PEPPER": "x" * 40},
                        "secretEnv": {"API_KEY_PEPPER": None},
                    }
                }
            },
            "is a secret",
        ),
        (
            {"services": {"kyc-tier": {"secretEnv": {"API_KEY_PEPPER": None}}}},
            "kyc-tier requires KYC_TIER_API_KEY_PEPPER",
        ),
        (
            {"services": {"kyc-tier": {"secretEnv": {"DATABASE_URL": None}}}},
            "kyc-tier requires KYC_TIER_DATABASE_URL",
        ),
        (
            {"services": {"kyc-tier": {"config": {"PORT": "1"}}}},
            "KYC_TIER_PORT is set by the chart",
        ),
        (
            {
                "services": {"audit": {"config": {"OTLP_ENDPOINT": "x"}}},
                "observability": {"otlpEndpoint": "http://c:4317"},
            },
            "AUDIT_OTLP_ENDPOINT is set by the chart",
        ),
        (
            {"services": {"kyc-tier": {"secretEnv": {"DATABASE_URL": "nowhere"}}}},
            "refers to secrets.nowhere",
        ),
        (
            {"gateway": {"secretEnv": {"RATE_LIMIT_STORAGE": "redis"}}},
            "refers to secrets.redis, which has no name",
        ),
    ],
)
def test_rendering_refuses_settings_that_would_not_start(overrides: dict, message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message.replace(".", r"\.")):
        render_values(overrides)


def chart_copy_with(tmp_path: Path, change) -> helm.Chart:
    """The chart with an edited catalogue, as if a settings class had changed."""
    copy = tmp_path / "identity-platform"
    shutil.copytree(CHART, copy)
    catalogue = json.loads((copy / "files" / "mesh.json").read_text())
    change(catalogue["components"])
    (copy / "files" / "mesh.json").write_text(json.dumps(catalogue))
    return helm.Chart.load(copy)


def test_a_setting_with_choices_refuses_other_values(tmp_path: Path) -> None:
    def add_backend(components: dict) -> None:
        components["embedding"]["declared"] = True
        components["embedding"]["settings"]["EMBEDDING_BACKEND"] = {
            "type": "str",
            "choices": ["onnxruntime", "triton"],
            "required": False,
            "secret": False,
            "default": "onnxruntime",
            "help": "",
        }

    with chart_copy_with(tmp_path, add_backend) as chart:
        manifests = render_values(
            {"services": {"embedding": {"config": {"BACKEND": "triton"}}}}, chart
        )
        assert (
            find(manifests, "ConfigMap", "embedding").doc["data"]["EMBEDDING_BACKEND"] == "triton"
        )
        with pytest.raises(
            helm.HelmRenderError, match="tensorrt is not one of onnxruntime, triton"
        ):
            render_values({"services": {"embedding": {"config": {"BACKEND": "tensorrt"}}}}, chart)


def test_when_a_settings_class_lands_the_chart_follows_it(tmp_path: Path) -> None:
    """Simulate the gateway's settings landing: the chart sets only the optional
    settings it declares, and refuses to render when wiring it needs is missing."""

    def gateway_lands(components: dict, without: str) -> None:
        names = [
            "HOST",
            "PORT",
            "LOG_LEVEL",
            "MESH_SIGNING_KEY_FILE",
            "MESH_TLS",
            "MESH_TLS_CERT_FILE",
            "MESH_TLS_KEY_FILE",
            "MESH_TLS_CA_FILE",
            "METRICS_PORT",
            *[f"{s.env_prefix}_ADDRESS" for s in mesh.SERVICES],
        ]
        components["gateway"]["declared"] = True
        components["gateway"]["settings"] = {
            f"GATEWAY_{n}": {
                "type": "str",
                "choices": None,
                "required": False,
                "secret": False,
                "default": "",
                "help": "",
            }
            for n in names
            if n != without
        }

    with chart_copy_with(tmp_path / "a", lambda c: gateway_lands(c, without="")) as chart:
        configmap = find(render_values({}, chart), "ConfigMap", "gateway").doc["data"]
        assert "GATEWAY_LOG_LEVEL" in configmap
        assert "GATEWAY_ENVIRONMENT" not in configmap and "GATEWAY_LOG_FORMAT" not in configmap
    with chart_copy_with(
        tmp_path / "b", lambda c: gateway_lands(c, without="KYC_TIER_ADDRESS")
    ) as chart:
        with pytest.raises(
            helm.HelmRenderError,
            match="the chart sets GATEWAY_KYC_TIER_ADDRESS, which is not a setting of gateway",
        ):
            render_values({}, chart)
    with chart_copy_with(tmp_path / "c", lambda c: gateway_lands(c, without="")) as chart:
        with pytest.raises(
            helm.HelmRenderError, match="GATEWAY_RATE_LIMIT_STORAGE is not a setting of gateway"
        ):
            render_values(
                {
                    "secrets": {"redis": {"name": "redis", "key": "url"}},
                    "gateway": {"secretEnv": {"RATE_LIMIT_STORAGE": "redis"}},
                },
                chart,
            )


def test_a_new_required_setting_stops_the_render_until_the_chart_sets_it(tmp_path: Path) -> None:
    def matching_requires_an_index(components: dict) -> None:
        components["matching"]["declared"] = True
        for variable in ("MATCHING_DATABASE_URL", "MATCHING_KEK_KEYRING_FILE"):
            components["matching"]["settings"][variable] = {
                "type": "str",
                "choices": None,
                "required": True,
                "secret": variable.endswith("URL"),
                "default": None,
                "help": "",
            }
        components["matching"]["settings"]["MATCHING_INDEX_DIR"] = {
            "type": "path",
            "choices": None,
            "required": True,
            "secret": False,
            "default": None,
            "help": "FAISS index directory",
        }

    with chart_copy_with(tmp_path, matching_requires_an_index) as chart:
        with pytest.raises(
            helm.HelmRenderError,
            match=(
                r"matching requires MATCHING_INDEX_DIR \(FAISS index directory\): "
                r"set services\.matching\.config\.INDEX_DIR"
            ),
        ):
            render_values({}, chart)
        manifests = render_values(
            {"services": {"matching": {"config": {"INDEX_DIR": "/tmp/index"}}}}, chart
        )
        assert (
            find(manifests, "ConfigMap", "matching").doc["data"]["MATCHING_INDEX_DIR"]
            == "/tmp/index"
        )


def test_configmaps_hold_settings_as_strings() -> None:
    manifests = render_values({"services": {"kyc-tier": {"config": {"DATABASE_POOL_SIZE": 9}}}})
    data = find(manifests, "ConfigMap", "kyc-tier").doc["data"]
    assert data["KYC_TIER_DATABASE_POOL_SIZE"] == "9"
    assert all(
        isinstance(v, str) for m in of_kind(manifests, "ConfigMap") for v in m.doc["data"].values()
    )


def test_onnx_runtime_threads_follow_the_cpu_limit(tmp_path: Path) -> None:
    """Where a component has INTRA_OP_THREADS (its own default counts the node's
    cores), the chart sets it to the container's CPU limit, rounded up."""

    def add_threads(components: dict) -> None:
        components["capture-quality"]["settings"]["CAPTURE_QUALITY_INTRA_OP_THREADS"] = {
            "type": "int",
            "choices": None,
            "required": False,
            "secret": False,
            "default": 0,
            "help": "",
        }

    with chart_copy_with(tmp_path, add_threads) as chart:
        for limit, threads in (("2", "2"), ("500m", "1"), ("1500m", "2"), (3, "3")):
            resources = {
                "limits": {"cpu": limit, "memory": "2Gi"},
                "requests": {"cpu": "100m", "memory": "1Gi"},
            }
            manifests = render_values(
                {"services": {"capture-quality": {"resources": resources}}}, chart
            )
            assert (
                find(manifests, "ConfigMap", "capture-quality").doc["data"][
                    "CAPTURE_QUALITY_INTRA_OP_THREADS"
                ]
                == threads
            )
        manifests = render_values(
            {"services": {"capture-quality": {"config": {"INTRA_OP_THREADS": 1}}}}, chart
        )
        assert (
            find(manifests, "ConfigMap", "capture-quality").doc["data"][
                "CAPTURE_QUALITY_INTRA_OP_THREADS"
            ]
            == "1"
        )
        # Components without the setting do not get it.
        assert not [
            k
            for k in find(manifests, "ConfigMap", "kyc-tier").doc["data"]
            if k.endswith("INTRA_OP_THREADS")
        ]


def test_the_chart_and_the_services_agree_on_the_region(tmp_path: Path) -> None:
    """Every service is told the release's region (the one its pods are pinned
    to), and the declared store regions; the schema refuses a foreign one."""
    values = {"residency": {"endpointRegions": {"db.example.net": "id-jkt-1"}}}
    manifests = render_values(values)
    for name in (s.name for s in mesh.SERVICES):
        env = container_env(manifests, find(manifests, "Deployment", name))
        prefix = COMPONENTS[name].env_prefix
        assert env[f"{prefix}_DATA_REGION"] == {"value": "id-jkt-1"}
        assert env[f"{prefix}_ALLOWED_REGIONS"] == {"value": "id-jkt-1"}
        assert env[f"{prefix}_ENDPOINT_REGIONS"] == {"value": "db.example.net=id-jkt-1"}
    with pytest.raises(helm.HelmValuesError):
        render_values({"residency": {"endpointRegions": {"db.example.net": "sg-sin-1"}}})
