"""The chart's mutual TLS: each component mounts its TLS Secret and is pointed
at it; cert-manager Certificates when asked for; plaintext only when turned off."""

from __future__ import annotations

from typing import Any

from identity_runtime import mesh
from tests.support.chart import (
    NAMESPACE,
    container_env,
    find,
    of_kind,
    render,
    render_values,
)

COMPONENTS = [(s.name, s.env_prefix) for s in mesh.SERVICES] + [("gateway", "GATEWAY")]
MOUNT = "/var/run/secrets/identity-mesh-tls"


def secret_volume(deployment: Any) -> tuple[str, dict[str, Any]]:
    """(mount path, secret volume source) of the pod's mesh-tls volume."""
    (container,) = deployment.pod_spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "mesh-tls"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in deployment.pod_spec["volumes"] if v["name"] == "mesh-tls"]
    return mount["mountPath"], volume["secret"]


def test_every_component_reads_its_certificate_from_its_own_secret() -> None:
    manifests = render("default")
    secrets = set()
    for name, prefix in COMPONENTS:
        deployment = find(manifests, "Deployment", name)
        path, source = secret_volume(deployment)
        assert path == MOUNT
        assert source["secretName"] == f"identity-identity-platform-{name}-mesh-tls"
        assert source["defaultMode"] == 0o440
        secrets.add(source["secretName"])
        env = container_env(manifests, deployment)
        assert env[f"{prefix}_MESH_TLS"] == {"value": "on"}
        assert env[f"{prefix}_MESH_TLS_CERT_FILE"] == {"value": f"{MOUNT}/tls.crt"}
        assert env[f"{prefix}_MESH_TLS_KEY_FILE"] == {"value": f"{MOUNT}/tls.key"}
        assert env[f"{prefix}_MESH_TLS_CA_FILE"] == {"value": f"{MOUNT}/ca.crt"}
    assert len(secrets) == len(COMPONENTS)
    # The chart references the Secrets; without cert-manager it creates none.
    assert not of_kind(manifests, "Certificate")


def test_cert_manager_issues_each_secret_with_the_workload_identity_and_dialled_names() -> None:
    issuer = {"name": "mesh-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    manifests = render_values({"meshTls": {"certManager": {"enabled": True, "issuerRef": issuer}}})
    certificates = {
        c.doc["spec"]["secretName"]: c.doc["spec"] for c in of_kind(manifests, "Certificate")
    }
    assert len(certificates) == len(COMPONENTS)
    # What the callers dial: kyc-tier's and the gateway's *_ADDRESS settings.
    dialled = {
        value["value"].rpartition(":")[0]
        for caller in ("kyc-tier", "gateway")
        for variable, value in container_env(
            manifests, find(manifests, "Deployment", caller)
        ).items()
        if variable.endswith("_ADDRESS") and "value" in value
    }
    for name, _ in COMPONENTS:
        _, source = secret_volume(find(manifests, "Deployment", name))
        spec = certificates[source["secretName"]]
        assert spec["uris"] == [f"spiffe://identity.local/{name}"]
        assert spec["issuerRef"] == issuer
        assert set(spec["usages"]) >= {"server auth", "client auth"}
        assert spec["privateKey"]["rotationPolicy"] == "Always"
        assert (
            f"identity-identity-platform-{name}.{NAMESPACE}.svc.cluster.local" in spec["dnsNames"]
        )
    # Every address a component dials is a name on the callee's certificate.
    names = {n for spec in certificates.values() for n in spec["dnsNames"]}
    assert dialled and dialled <= names


def test_turned_off_the_mesh_is_plaintext_and_probed_on_the_service_port() -> None:
    manifests = render_values({"meshTls": {"enabled": False}})
    for name, prefix in COMPONENTS:
        deployment = find(manifests, "Deployment", name)
        (container,) = deployment.pod_spec["containers"]
        assert all(v["name"] != "mesh-tls" for v in deployment.pod_spec["volumes"])
        env = container_env(manifests, deployment)
        assert env[f"{prefix}_MESH_TLS"] == {"value": "off"}
        assert f"{prefix}_HEALTH_PORT" not in env
        if name != "gateway":
            # The gRPC port and the metrics port; no health port.
            (port,) = [p for p in container["ports"] if p["name"] != "metrics"]
            assert port["name"] == "grpc"
            assert container["readinessProbe"]["grpc"] == {"port": port["containerPort"]}
