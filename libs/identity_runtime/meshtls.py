"""Mutual TLS between the gateway and the services and between services.

Every gRPC port of the mesh serves TLS and demands a client certificate
signed by the mesh's CA; every channel between components presents its own
certificate and checks the server's against the same CA. Certificates name
their workload SPIFFE-style, in a URI SAN:
`spiffe://identity.local/<service>` (the gateway is `.../gateway`); the
services check that a caller token's issuer is the workload whose
certificate carried it (`peer_service`, used by identity_runtime.authz).

Settings, per component (`<PREFIX>_...`): MESH_TLS (on | off),
MESH_TLS_CERT_FILE, MESH_TLS_KEY_FILE, MESH_TLS_CA_FILE (PEM). `off` serves
plaintext and is for tests and debugging only: production refuses it.
`identity up` makes a local CA and a certificate per component in its data
directory (`issue_local_certificates`); the chart mounts them from Secrets
(or cert-manager Certificates).
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from identity_runtime.settings import SettingsError

TRUST_DOMAIN = "identity.local"
SPIFFE_PREFIX = f"spiffe://{TRUST_DOMAIN}/"


def spiffe_id(workload: str) -> str:
    return f"{SPIFFE_PREFIX}{workload}"


@dataclass(frozen=True)
class MeshTls:
    """One component's TLS material (PEM bytes)."""

    ca: bytes
    cert: bytes
    key: bytes

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def _read(path: Path | None, variable: str, problems: list[str]) -> bytes:
    if path is None:
        problems.append(f"{variable} is required when mesh TLS is on")
        return b""
    try:
        return path.read_bytes()
    except OSError as exc:
        problems.append(f"{variable}: cannot read {path}: {exc.strerror}")
        return b""


def mesh_tls_from(settings: Any, prefix: str) -> MeshTls | None:
    """The component's TLS material, or None when `<PREFIX>_MESH_TLS=off`;
    SettingsError naming every missing file, or off in production."""
    if settings.mesh_tls == "off":
        if getattr(settings, "environment", "development") == "production":
            raise SettingsError(
                [f"{prefix}_MESH_TLS=off: production serves and calls over mutual TLS only"]
            )
        return None
    problems: list[str] = []
    ca = _read(settings.mesh_tls_ca_file, f"{prefix}_MESH_TLS_CA_FILE", problems)
    cert = _read(settings.mesh_tls_cert_file, f"{prefix}_MESH_TLS_CERT_FILE", problems)
    key = _read(settings.mesh_tls_key_file, f"{prefix}_MESH_TLS_KEY_FILE", problems)
    if problems:
        raise SettingsError(problems)
    return MeshTls(ca=ca, cert=cert, key=key)


def peer_service(auth_context: Mapping[str, Iterable[bytes]]) -> str | None:
    """The workload named by the client certificate's SPIFFE URI SAN of a TLS
    call; "" for a certificate without one (no SAN extension, or no SPIFFE URI
    in it: it names no workload, so no caller token matches it); None only on
    a plaintext call."""
    pems = list(auth_context.get("x509_pem_cert") or ())
    if not pems:
        return None
    return _spiffe_workload(pems[0])


@functools.lru_cache(maxsize=256)
def _spiffe_workload(pem: bytes) -> str:
    """peer_service of one certificate (the handshake verified it; the mesh's
    few certificates are parsed once, not on every call)."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return ""
    for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(SPIFFE_PREFIX):
            return uri.removeprefix(SPIFFE_PREFIX)
    return ""


# --- issuing (identity up, tests) ---------------------------------------------------


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_ca(common_name: str = "identity-platform local mesh CA") -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of a new CA (ECDSA P-256, 5 years)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=5 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def issue(
    ca_cert_pem: bytes, ca_key_pem: bytes, workload: str, hosts: Iterable[str], days: int = 365
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for `workload`: its SPIFFE URI SAN and a DNS or
    IP SAN per host it is reached at; usable as a server and as a client."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the mesh CA key must be an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id(workload))]
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, workload)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
