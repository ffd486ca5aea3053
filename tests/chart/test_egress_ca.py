"""A partner's private CA for outbound TLS (egressCA): Face Match callbacks
(FACE_MATCH_CALLBACK_CA_FILE) and kyc-tier webhooks (KYC_TIER_WEBHOOK_CA_FILE)
trust a PEM bundle mounted from an existing Secret or ConfigMap. Rendered
with Helm's own engine; the rendered settings load, CA file and all."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helm_python.errors import HelmRenderError, HelmValuesError

from identity_runtime import meshtls
from identity_runtime.settings import load_settings
from tests.chart.test_settings import COMPONENTS, mount_volumes, stand_in
from tests.support.chart import container_env, find, pod_workloads, render, render_values

MOUNT = "/var/run/secrets/identity/egress-ca"
CA_SETTINGS = {
    "face-match": "FACE_MATCH_CALLBACK_CA_FILE",
    "kyc-tier": "KYC_TIER_WEBHOOK_CA_FILE",
}


def with_ca(component: str, **ca: str) -> dict[str, Any]:
    return {"services": {component: {"egressCA": ca}}}


def egress_ca_volume(deployment: Any) -> dict[str, Any] | None:
    return next((v for v in deployment.pod_spec["volumes"] if v["name"] == "egress-ca"), None)


def test_by_default_no_bundle_is_mounted_and_no_ca_file_set() -> None:
    manifests = render("default")
    for workload in pod_workloads(manifests):
        assert egress_ca_volume(workload) is None, workload.name
    for component, variable in CA_SETTINGS.items():
        env = container_env(manifests, find(manifests, "Deployment", component))
        assert variable not in env


@pytest.mark.parametrize(
    ("component", "source", "kind"),
    [
        ("face-match", "secret", "secret"),
        ("face-match", "configMap", "configMap"),
        ("kyc-tier", "secret", "secret"),
        ("kyc-tier", "configMap", "configMap"),
    ],
)
def test_a_bundle_is_mounted_and_named_and_the_service_starts_with_it(
    component: str, source: str, kind: str, tmp_path: Path
) -> None:
    manifests = render_values(with_ca(component, **{source: "partner-ca", "key": "bundle.pem"}))
    deployment = find(manifests, "Deployment", component)
    env = container_env(manifests, deployment)
    variable = CA_SETTINGS[component]
    assert env[variable] == {"value": f"{MOUNT}/bundle.pem"}
    # Only the bundle's entry, read-only, from the object named.
    volume = egress_ca_volume(deployment)
    assert volume is not None
    assert set(volume) == {"name", kind}
    reference = volume[kind]
    assert reference["secretName" if kind == "secret" else "name"] == "partner-ca"
    assert reference["items"] == [{"key": "bundle.pem", "path": "bundle.pem"}]
    (container,) = deployment.pod_spec["containers"]
    assert {"name": "egress-ca", "mountPath": MOUNT, "readOnly": True} in container["volumeMounts"]
    # The other services get nothing.
    for other in pod_workloads(manifests):
        if other.component != component:
            assert egress_ca_volume(other) is None, other.name
    # The settings load with a real PEM CA at the mounted path (a file the
    # service would refuse, e.g. not PEM, fails its start: tests/unit).
    environ = {
        name: value["value"] if "value" in value else stand_in(name)
        for name, value in env.items()
        if not name.startswith("PG")
    }
    environ = mount_volumes(deployment, environ, tmp_path)
    Path(environ[variable]).write_bytes(meshtls.new_ca("partner private CA")[0])
    info = COMPONENTS[component]
    settings = load_settings(info.settings_class, info.env_prefix, environ)
    field = "callback_ca_file" if component == "face-match" else "webhook_ca_file"
    assert getattr(settings, field) == Path(environ[variable])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            with_ca("face-match", secret="partner-ca", configMap="partner-ca"),
            "services.face-match.egressCA: set secret or configMap, not both",
        ),
        (
            with_ca("kyc-tier", secret="partner-ca", setting="NOT_A_SETTING"),
            "the chart sets KYC_TIER_NOT_A_SETTING, which is not a setting of kyc-tier",
        ),
        (
            {
                "services": {
                    "face-match": {
                        "egressCA": {"secret": "partner-ca"},
                        "config": {"CALLBACK_CA_FILE": "/elsewhere/ca.pem"},
                    }
                }
            },
            "services.face-match.config.CALLBACK_CA_FILE: FACE_MATCH_CALLBACK_CA_FILE is set "
            "by the chart",
        ),
    ],
)
def test_contradictory_or_unknown_wiring_fails_the_render(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(HelmRenderError, match=message):
        render_values(values)


@pytest.mark.parametrize(
    ("ca", "where"),
    [
        ({"secret": "partner-ca", "key": "../ca.pem"}, "/egressCA/key"),
        ({"secret": "Partner CA"}, "/egressCA/secret"),
        ({"secret": "partner-ca", "path": "/etc/ssl"}, "'path' not allowed"),
    ],
)
def test_the_schema_refuses_malformed_bundle_values(ca: dict[str, str], where: str) -> None:
    with pytest.raises(HelmValuesError, match=re.escape(where)):
        render_values(with_ca("face-match", **ca))
