"""Secrets and the first organisation for the one-machine run.

Created once in the data directory (mode 0600) so that `identity up` works on
a fresh machine with no configuration. Production passes every secret
through the environment instead (see the chart).
"""

from __future__ import annotations

from pathlib import Path

from identity_cli.secrets import (
    read_or_create_keyring,
    read_or_create_mesh_keys,
    read_or_create_mesh_tls,
    read_or_create_secret,
)
from identity_runtime import mesh

LOCAL_ORG_ID = "org_local"
# The API-key pepper of the one-machine run, in <data dir>/secrets/.
API_KEY_PEPPER_FILE = "api-key-pepper"
# The audit service's signed checkpoints (in the data dir) and their key pair
# (in <data dir>/secrets/).
AUDIT_CHECKPOINT_FILE = "audit/checkpoints.jsonl"
AUDIT_CHECKPOINT_KEY = "audit-checkpoint-ed25519.pem"
AUDIT_CHECKPOINT_PUBLIC_KEY = "audit-checkpoint-ed25519.pub"


def local_settings(
    data_dir: Path, database_url: str, hosts: tuple[str, ...] = ()
) -> dict[str, str]:
    """Settings the services need on one machine; the caller's env overrides them.
    `hosts`: where the services are reached besides localhost (their certificates' names)."""
    # One KEK keyring for matching and kyc-tier: `identity keys rotate`
    # re-wraps every data key in the database, whoever sealed with it.
    kek_keyring = str(read_or_create_keyring(data_dir, "kek-keyring.json", "kek-local-1"))
    settings = {
        "KYC_TIER_DATABASE_URL": database_url,
        "KYC_TIER_API_KEY_PEPPER": read_or_create_secret(data_dir, API_KEY_PEPPER_FILE),
        "KYC_TIER_PII_INDEX_KEY": read_or_create_secret(data_dir, "pii-index-key"),
        "KYC_TIER_KEK_KEYRING_FILE": kek_keyring,
        "LIVENESS_DATABASE_URL": database_url,
        "MATCHING_DATABASE_URL": database_url,
        "MATCHING_KEK_KEYRING_FILE": kek_keyring,
        "AUDIT_DATABASE_URL": database_url,
        "AUDIT_HMAC_KEYRING_FILE": str(
            read_or_create_keyring(data_dir, "audit-hmac-keyring.json", "audit-local-1")
        ),
        # Signed chain-head checkpoints, outside the database.
        "AUDIT_CHECKPOINT_FILE": str(data_dir / AUDIT_CHECKPOINT_FILE),
        "AUDIT_CHECKPOINT_KEY_FILE": str(checkpoint_key(data_dir)),
    }
    settings.update(face_match_settings(data_dir, database_url))
    settings.update(mesh_token_settings(data_dir))
    settings.update(mesh_tls_settings(data_dir, hosts))
    return settings


def face_match_settings(data_dir: Path, database_url: str) -> dict[str, str]:
    """Face Match on one machine: its bucket and keys in the data dir (the
    bucket's images sealed under data keys the shared KEK keyring wraps)."""
    return {
        "FACE_MATCH_DATABASE_URL": database_url,
        "FACE_MATCH_BUCKET_DIR": str(data_dir / "face-match-bucket"),
        "FACE_MATCH_KEK_KEYRING_FILE": str(
            read_or_create_keyring(data_dir, "kek-keyring.json", "kek-local-1")
        ),
        "FACE_MATCH_UPLOAD_SIGNING_KEY": read_or_create_secret(data_dir, "face-match-upload-key"),
        "FACE_MATCH_CALLBACK_SIGNING_KEY": read_or_create_secret(
            data_dir, "face-match-callback-key"
        ),
        "FACE_MATCH_OAUTH_CLIENT_PEPPER": read_or_create_secret(data_dir, "oauth-client-pepper"),
        "FACE_MATCH_OAUTH_SIGNING_KEYS_FILE": str(read_or_create_oauth_keys(data_dir)),
    }


def read_or_create_oauth_keys(data_dir: Path) -> Path:
    """The OAuth token-signing keyring (one Ed25519 key on first use), 0600."""
    import os

    from services.face_match.oauth import SigningKeys

    directory = data_dir / "secrets"
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / "oauth-signing-keys.json"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(SigningKeys.generate("oauth-local-1"))
    return path


def mesh_tls_settings(data_dir: Path, hosts: tuple[str, ...] = ()) -> dict[str, str]:
    """Mutual TLS: a local CA and a certificate per component, in the data dir."""
    from identity_runtime.meshtls import LOCAL_HOSTS

    components = [(s.name, s.env_prefix) for s in mesh.SERVICES] + [("gateway", "GATEWAY")]
    ca, issued = read_or_create_mesh_tls(
        data_dir, tuple(name for name, _ in components), (*LOCAL_HOSTS, *hosts)
    )
    settings = {}
    for name, prefix in components:
        cert, key = issued[name]
        settings[f"{prefix}_MESH_TLS_CERT_FILE"] = str(cert)
        settings[f"{prefix}_MESH_TLS_KEY_FILE"] = str(key)
        settings[f"{prefix}_MESH_TLS_CA_FILE"] = str(ca)
    return settings


def mesh_token_settings(data_dir: Path) -> dict[str, str]:
    """Caller-token keys: the gateway and every service that calls another sign
    with their own key; every service trusts all of their public keys."""
    signers = ("gateway", *(s.name for s in mesh.SERVICES if s.calls))
    keys, trusted = read_or_create_mesh_keys(data_dir, signers)
    settings = {f"{s.env_prefix}_MESH_TRUSTED_KEYS_FILE": str(trusted) for s in mesh.SERVICES}
    settings["GATEWAY_MESH_SIGNING_KEY_FILE"] = str(keys["gateway"])
    for service in mesh.SERVICES:
        if service.name in keys:
            settings[f"{service.env_prefix}_MESH_SIGNING_KEY_FILE"] = str(keys[service.name])
    return settings


def checkpoint_key(data_dir: Path) -> Path:
    """The one-machine run's Ed25519 checkpoint key (created once, 0600), with
    its public half beside it for `identity audit verify`."""
    from services.audit.checkpoints import create_key_pair

    private = data_dir / "secrets" / AUDIT_CHECKPOINT_KEY
    if not private.exists():
        create_key_pair(private, data_dir / "secrets" / AUDIT_CHECKPOINT_PUBLIC_KEY)
    return private


def ensure_local_org(data_dir: Path, database_url: str, pepper: str) -> str:
    """Create the local organisation and an internal-scope key on first run.

    Returns a line to print (with the key only the first time)."""
    from identity_store.db import Database
    from services.kyc_tier import models
    from services.kyc_tier.partners import PartnerDirectory, create_org

    key_file = data_dir / "secrets" / "local-api-key"
    database = Database(database_url)
    try:
        with database.transaction() as session:
            if session.get(models.Org, LOCAL_ORG_ID) is not None:
                return f"  API key          in {key_file}" if key_file.exists() else ""
            create_org(session, "Local development", LOCAL_ORG_ID)
            _, secret = PartnerDirectory(pepper).create_api_key(
                session, LOCAL_ORG_ID, "local", ("public", "internal")
            )
    finally:
        database.dispose()
    key_file.write_text(secret + "\n")
    key_file.chmod(0o600)
    return f"  API key          {secret}  (org {LOCAL_ORG_ID}, public+internal; also in {key_file})"
