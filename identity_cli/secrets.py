"""Local secrets for the one-machine run, created on first use in the data dir.

Production deployments pass secrets through the environment (the chart
mounts them from Kubernetes Secrets); these files exist so that `identity up`
works on a fresh machine without any configuration.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create_secret(data_dir: Path, name: str, nbytes: int = 32) -> str:
    directory = data_dir / "secrets"
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()


def read_or_create_keyring(data_dir: Path, name: str, first_key_id: str) -> Path:
    """A keyring file in the data dir (one fresh 256-bit key on first use); its path.

    For the one-machine run: `identity up` points MATCHING_/KYC_TIER_KEK_KEYRING_FILE
    and AUDIT_HMAC_KEYRING_FILE at these. Production mounts them from Secrets.
    """
    from identity_crypto.keyring import generate, write_keyring_file

    directory = data_dir / "secrets"
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / name
    if not path.exists():
        write_keyring_file(path, generate(first_key_id))
    return path


def read_or_create_mesh_keys(
    data_dir: Path, signers: tuple[str, ...]
) -> tuple[dict[str, Path], Path]:
    """The mesh's token keys for the one-machine run: an Ed25519 private key per
    signing process (`mesh-<name>.key`, 0600) and the trusted-keys document
    listing their public keys (`mesh-trusted-keys.json`); (keys by name, document).

    A signer added later gets its key and the document is rewritten."""
    from identity_runtime.meshauth import TrustedKeys, generate_private_key_pem, load_private_key

    directory = data_dir / "secrets"
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    keys: dict[str, Path] = {}
    for name in signers:
        path = directory / f"mesh-{name}.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(generate_private_key_pem())
        keys[name] = path
    document = TrustedKeys.document(
        {name: [load_private_key(path.read_bytes()).public_key()] for name, path in keys.items()}
    )
    trusted = directory / "mesh-trusted-keys.json"
    if not trusted.exists() or trusted.read_text() != document:
        trusted.write_text(document)
    return keys, trusted


def read_or_create_mesh_tls(
    data_dir: Path, workloads: tuple[str, ...], hosts: tuple[str, ...]
) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    """The one-machine run's mutual TLS: a local CA (`mesh-tls/ca.pem`, its key
    0600) and per workload a certificate and key (SPIFFE URI SAN, valid for
    `hosts`); (CA path, workload -> (cert path, key path)). Certificates are
    re-issued when the hosts change."""
    from identity_runtime.meshtls import issue, new_ca

    directory = data_dir / "secrets" / "mesh-tls"
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca_path, ca_key_path = directory / "ca.pem", directory / "ca.key"
    if not ca_path.exists() or not ca_key_path.exists():
        ca_cert, ca_key = new_ca()
        _write_private(ca_key_path, ca_key)
        ca_path.write_bytes(ca_cert)
    hosts_file = directory / "hosts"
    wanted = "\n".join(hosts)
    reissue = not hosts_file.exists() or hosts_file.read_text() != wanted
    issued = {}
    for workload in workloads:
        cert_path, key_path = directory / f"{workload}.pem", directory / f"{workload}.key"
        if reissue or not cert_path.exists() or not key_path.exists():
            cert, key = issue(ca_path.read_bytes(), ca_key_path.read_bytes(), workload, hosts)
            key_path.unlink(missing_ok=True)
            _write_private(key_path, key)
            cert_path.write_bytes(cert)
        issued[workload] = (cert_path, key_path)
    hosts_file.write_text(wanted)
    return ca_path, issued


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
