"""The tests' one way to authenticate to a service: caller tokens signed with
keys made here (once per test process), trusted by every service the tests
start (`start_service` and the in-process mesh add `service_env`).

    stub.Verify(request, metadata=caller_metadata("org_a"))
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import grpc

from identity_runtime import mesh, meshtls
from identity_runtime.authz import GATEWAY_ISSUER
from identity_runtime.meshauth import (
    TokenSigner,
    TrustedKeys,
    generate_private_key_pem,
    load_private_key,
)

# The processes that sign in the mesh: the gateway and the services that call others.
SIGNERS = (GATEWAY_ISSUER, *(s.name for s in mesh.SERVICES if s.calls))


@functools.cache
def signing_key_pem(issuer: str) -> str:
    return generate_private_key_pem().decode()


@functools.cache
def trusted_keys_json() -> str:
    return TrustedKeys.document(
        {name: [load_private_key(signing_key_pem(name)).public_key()] for name in SIGNERS}
    )


def signer(issuer: str) -> TokenSigner:
    """The signer a mesh process of that name uses (the gateway speaks for partners)."""
    return TokenSigner(
        issuer, load_private_key(signing_key_pem(issuer)), mesh_identity=issuer != GATEWAY_ISSUER
    )


def _workload(env_prefix: str) -> str:
    if env_prefix == "GATEWAY":
        return GATEWAY_ISSUER
    service = next((s for s in mesh.SERVICES if s.env_prefix == env_prefix), None)
    return service.name if service is not None else env_prefix.lower()


def service_env(env_prefix: str, *, tls: bool = False) -> dict[str, str]:
    """A service's (or, with "GATEWAY", the gateway's) token settings, and its
    mutual TLS: with `tls` a certificate from the tests' CA, else MESH_TLS=off."""
    workload = _workload(env_prefix)
    env = {f"{env_prefix}_MESH_SIGNING_KEY": signing_key_pem(GATEWAY_ISSUER)}
    if env_prefix != "GATEWAY":
        env = {f"{env_prefix}_MESH_TRUSTED_KEYS": trusted_keys_json()}
        if workload in SIGNERS:
            env[f"{env_prefix}_MESH_SIGNING_KEY"] = signing_key_pem(workload)
    if not tls:
        env[f"{env_prefix}_MESH_TLS"] = "off"
        return env
    cert, key = certificate_files(workload)
    env[f"{env_prefix}_MESH_TLS"] = "on"
    env[f"{env_prefix}_MESH_TLS_CERT_FILE"] = str(cert)
    env[f"{env_prefix}_MESH_TLS_KEY_FILE"] = str(key)
    env[f"{env_prefix}_MESH_TLS_CA_FILE"] = str(_tls_dir() / "ca.pem")
    return env


@functools.cache
def _tls_dir() -> Path:
    """The tests' mesh CA, made once per test process (removed at exit)."""
    directory = Path(tempfile.mkdtemp(prefix="identity-test-mesh-tls-"))
    atexit.register(shutil.rmtree, directory, True)
    cert, key = meshtls.new_ca("identity-platform test mesh CA")
    (directory / "ca.pem").write_bytes(cert)
    (directory / "ca.key").write_bytes(key)
    return directory


def remove_test_ca() -> None:
    """Remove the tests' CA directory, if made (pytest's session end; atexit otherwise)."""
    if _tls_dir.cache_info().currsize:
        shutil.rmtree(_tls_dir(), ignore_errors=True)
        _tls_dir.cache_clear()
        certificate_files.cache_clear()


@functools.cache
def certificate_files(workload: str) -> tuple[Path, Path]:
    """(certificate, key) files of `workload`, signed by the tests' CA."""
    directory = _tls_dir()
    cert, key = meshtls.issue(
        (directory / "ca.pem").read_bytes(),
        (directory / "ca.key").read_bytes(),
        workload,
        meshtls.LOCAL_HOSTS,
    )
    (directory / f"{workload}.pem").write_bytes(cert)
    (directory / f"{workload}.key").write_bytes(key)
    return directory / f"{workload}.pem", directory / f"{workload}.key"


def client_tls(workload: str) -> meshtls.MeshTls:
    """A test client's mutual TLS as `workload` (its certificate from the tests' CA)."""
    cert, key = certificate_files(workload)
    return meshtls.MeshTls(
        ca=(_tls_dir() / "ca.pem").read_bytes(), cert=cert.read_bytes(), key=key.read_bytes()
    )


def unnamed_client_tls(common_name: str = "gateway") -> meshtls.MeshTls:
    """A client certificate from the tests' CA that names no workload: only a
    common name, no SubjectAlternativeName extension (what a second cert-manager
    Certificate on the same CA issuer could be)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = _tls_dir()
    ca_pem = (directory / "ca.pem").read_bytes()
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return meshtls.MeshTls(
        ca=ca_pem, cert=cert.public_bytes(serialization.Encoding.PEM), key=key_pem
    )


def caller_metadata(
    org_id: str = "",
    *,
    scopes: tuple[str, ...] = ("public", "internal"),
    actor: str = "api_key:key_test",
    issuer: str = "kyc-tier",
) -> list[tuple[str, str]]:
    """Metadata with a fresh caller token. By default the token is kyc-tier's (a
    mesh service: it may call every service but kyc-tier and carries "mesh");
    `issuer="gateway"` makes a partner's token as the gateway forwards it."""
    token = signer(issuer).mint(org_id, actor, scopes)
    return [("authorization", f"Bearer {token}")]


def issuer_for(service_name: str) -> str:
    """Who calls `service_name` in the mesh: kyc-tier calls the others, the gateway kyc-tier."""
    return "kyc-tier" if service_name in mesh.KYC_TIER.calls else GATEWAY_ISSUER


class CallerTokens(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Adds a fresh caller token to every call that carries no credentials of its own."""

    def __init__(self, service_name: str, org_id: str):
        self.issuer = issuer_for(service_name)
        self.org_id = org_id

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        # grpc-stubs type Metadata as a collection of (key, value) pairs; `in` tests keys.
        if "authorization" not in metadata and "x-api-key" not in metadata:  # type: ignore[comparison-overlap]
            for key, value in caller_metadata(self.org_id, issuer=self.issuer):
                metadata.add(key, value)
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)
