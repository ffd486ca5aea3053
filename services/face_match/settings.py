"""Settings of the face-match service, from `FACE_MATCH_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from identity_crypto.datakeys import DataKeySettings
from identity_inference.pack import (
    DEFAULT_DETECTOR,
    DEFAULT_EMBEDDING,
    DEFAULT_PAD_MODELS,
    InferenceSettings,
)
from identity_runtime import mesh
from identity_runtime.egress import ca_file_problem, check_url
from identity_runtime.errors import InvalidArgument
from identity_runtime.settings import (
    DatabaseSettings,
    address_setting,
    inline_secret_setting,
    keyring_missing,
    setting,
)


@dataclass(frozen=True, kw_only=True)
class FaceMatchSettings(DataKeySettings, DatabaseSettings, InferenceSettings):
    """Everything the face-match service and its workers read from their environment.

    The KEK keyring (`kek_keyring_file`, the one kyc-tier and matching hold)
    wraps the data keys that seal the local bucket's images (sealing.py);
    storage=s3 seals with the store's server-side encryption instead."""

    RESIDENT_ENDPOINTS = ("database_url", "s3_endpoint_url")
    RESIDENT_REGIONS = ("s3_region", "kms_region")

    audit_address: str = address_setting(mesh.AUDIT)
    audit_relay_poll_seconds: float = setting(
        1.0, "How often the transitions not yet in the audit chain are appended to it"
    )
    public_base_url: str = setting(
        "http://127.0.0.1:8080",
        "Base URL partners reach the gateway at; presigned upload URLs start with it",
    )
    storage: str = setting(
        "local",
        "Object store of the uploads: local (a filesystem bucket the gateway serves with "
        "signed URLs; one machine) or s3 (any S3-compatible store, presigned PUTs)",
    )
    bucket_dir: Path | None = setting(
        None, "Directory of the local filesystem bucket (storage=local)"
    )
    s3_bucket: str = setting("", "Bucket of the uploads (storage=s3)")
    s3_endpoint_url: str = setting(
        "", "Endpoint of the S3-compatible store; empty = AWS's for the region"
    )
    s3_region: str = setting(
        "id-jkt-1",
        "Region of the bucket (the platform's, e.g. id-jkt-1, or the cloud's, e.g. "
        "ap-southeast-3); production refuses one outside ALLOWED_REGIONS",
    )
    s3_path_style: bool = setting(
        False, "Path-style addressing (most non-AWS S3-compatible stores need it)"
    )
    s3_server_side_encryption: str = setting(
        "AES256",
        "Server-side encryption every presigned PUT must ask for (signed into the URL; "
        "the partner sends the headers returned with it): AES256 (SSE-S3) or aws:kms",
    )
    s3_sse_kms_key_id: str = setting(
        "", "KMS key id or ARN of s3_server_side_encryption=aws:kms (empty = the bucket's)"
    )
    upload_signing_key: str = setting(
        help="HMAC key of the presigned upload URLs (at least 32 characters)", secret=True
    )
    upload_url_seconds: int = setting(900, "Lifetime of a presigned upload URL")
    upload_max_bytes: int = setting(8_388_608, "Largest accepted image upload, in bytes")
    submission_ttl_seconds: int = setting(
        86_400, "A submission not confirmed this long after creation expires"
    )
    image_retention_days: int = setting(
        1, "Uploaded images are deleted this many days after processing (0 = at once)"
    )
    result_retention_days: int = setting(
        90,
        "Finished submissions (results, transitions) are deleted this many days after "
        "they end (0 = never)",
    )
    callback_signing_key: str = setting(
        help="Key the per-organisation callback signing secrets are sealed with, and the "
        "legacy derived secrets come from (at least 32 characters)",
        secret=True,
    )
    callback_retry_hours: int = setting(
        72,
        "How long a callback that keeps failing is retried after it was queued (backoff "
        "from 30 s, doubling, capped at 6 h, as webhooks'), then given up (audited)",
    )
    default_callback_url: str = setting(
        "", "Callback URL of submissions that name none (empty = no callback)"
    )
    callback_allow_loopback: bool = setting(
        False,
        "Allow callback URLs on loopback addresses, over http too (the one-machine run "
        "only: production refuses it); private and link-local targets are always refused",
    )
    callback_ca_file: Path | None = setting(
        None,
        "Extra CA certificates (PEM) trusted for https callback receivers, besides the "
        "system's (a private CA of the partner's)",
    )
    oauth_client_pepper: str = setting(
        help="Secret mixed into OAuth client-secret hashes (at least 32 characters)", secret=True
    )
    oauth_signing_keys_file: Path | None = setting(
        None,
        'JSON {"primary": kid, "keys": {kid: Ed25519 private key PEM}}: the primary signs '
        "access tokens, every key is published in the JWKS (rotation)",
    )
    oauth_signing_keys: str = inline_secret_setting("signing-keys document")
    oauth_token_seconds: int = setting(300, "Lifetime of an access token")
    oauth_issuer: str = setting("identity-platform/face-match", "iss of the access tokens")
    workers: int = setting(1, "Queue workers this process runs (0 = API only)")
    job_visibility_seconds: float = setting(
        120.0, "A leased job not finished this long is leased again (a dead worker's job)"
    )
    job_max_attempts: int = setting(3, "Attempts before a job is set aside as poison")
    job_poll_seconds: float = setting(0.5, "How often an idle worker looks for jobs")
    detector_model: str = setting(DEFAULT_DETECTOR, "Manifest id of the face detector")
    embedding_model: str = setting(DEFAULT_EMBEDDING, "Manifest id of the face embedder")
    pad_models: tuple[str, ...] = setting(
        DEFAULT_PAD_MODELS,
        "PAD model ids run on the selfie (a suspected attack makes a match REVIEW); empty = none",
    )
    review_margin: float = setting(
        0.08,
        "Similarities within this margin below the match threshold are REVIEW; so is a "
        "match when an image's quality lowers trust",
    )

    def resident_stores(self) -> tuple[dict[str, str], dict[str, str]]:
        endpoints, regions = super().resident_stores()
        if self.storage != "s3":
            # The local bucket is a directory of this service: its own region.
            del endpoints["s3_endpoint_url"], regions["s3_region"]
        else:
            # No key-encryption keys are used with the store's own encryption.
            del regions["kms_region"]
        return endpoints, regions

    def validate(self) -> list[tuple[str, str]]:
        problems = super().validate()
        for name in ("upload_signing_key", "callback_signing_key", "oauth_client_pepper"):
            if len(getattr(self, name)) < 32:
                problems.append((name, "must be at least 32 characters"))
        if self.storage not in ("local", "s3"):
            problems.append(("storage", "must be local or s3"))
        if self.storage == "local" and self.bucket_dir is None:
            problems.append(("bucket_dir", "is required when storage=local"))
        if self.storage == "s3" and not self.s3_bucket:
            problems.append(("s3_bucket", "is required when storage=s3"))
        if self.storage == "local":
            # The local bucket's images are sealed under data keys it wraps.
            problems += keyring_missing(self, "kek_keyring", mesh.FACE_MATCH.env_prefix)
        if self.s3_server_side_encryption not in ("AES256", "aws:kms"):
            problems.append(("s3_server_side_encryption", "must be AES256 or aws:kms"))
        if self.s3_sse_kms_key_id and self.s3_server_side_encryption != "aws:kms":
            problems.append(
                ("s3_sse_kms_key_id", "applies only with s3_server_side_encryption=aws:kms")
            )
        if self.oauth_signing_keys_file is None and not self.oauth_signing_keys:
            problems.append(("oauth_signing_keys", "set it or oauth_signing_keys_file"))
        if not 1 <= self.job_max_attempts <= 100:
            problems.append(("job_max_attempts", "must be between 1 and 100"))
        if self.result_retention_days < 0 or self.image_retention_days < 0:
            problems.append(("result_retention_days", "retention days must be 0 or more"))
        if self.environment == "production" and self.callback_allow_loopback:
            problems.append(
                ("callback_allow_loopback", "production refuses loopback callback targets")
            )
        if self.default_callback_url:
            try:
                check_url(self.default_callback_url, self.callback_allow_loopback)
            except InvalidArgument as refused:
                problems.append(("default_callback_url", refused.message.removeprefix("url: ")))
        if problem := ca_file_problem(self.callback_ca_file):
            problems.append(("callback_ca_file", problem))
        if not 1 <= self.callback_retry_hours <= 720:
            problems.append(("callback_retry_hours", "must be between 1 and 720 hours"))
        if self.workers < 0:
            problems.append(("workers", "must be 0 or more"))
        return problems
