"""Settings of the kyc-tier service, from `KYC_TIER_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from identity_crypto.datakeys import SealedStoreSettings
from identity_runtime import mesh
from identity_runtime.egress import ca_file_problem
from identity_runtime.settings import (
    address_setting,
    keyring_missing,
    retention_batch_setting,
    setting,
)


@dataclass(frozen=True, kw_only=True)
class KycTierSettings(SealedStoreSettings):
    """Everything the kyc-tier service reads from its environment."""

    api_key_pepper: str = setting(
        help="Secret mixed into API-key hashes (at least 32 characters)", secret=True
    )
    capture_quality_address: str = address_setting(mesh.CAPTURE_QUALITY)
    liveness_address: str = address_setting(mesh.LIVENESS)
    embedding_address: str = address_setting(mesh.EMBEDDING)
    matching_address: str = address_setting(mesh.MATCHING)
    audit_address: str = address_setting(mesh.AUDIT)
    pii_index_key: str = setting(
        help="Secret key of the NIK search index (at least 32 characters)", secret=True
    )
    audit_relay_poll_seconds: float = setting(
        1.0, "How often the audit outbox relay retries pending entries"
    )
    audit_relay_gather_seconds: float = setting(
        0.25,
        "Woken by commits, the audit outbox relay passes at most this often, so "
        "that entries committed close together go to the audit service in one "
        "batch (0: a pass after every commit)",
    )
    recovery_interval_seconds: float = setting(
        30.0,
        "How often unfinished erasures are resumed and crashed attempts finished "
        "(also once at start-up)",
    )
    retention_sweep_interval_seconds: float = setting(
        3600.0,
        "How often expired capture frames and verification rows are swept "
        "(libs/identity_store/retention.py; also once at start-up)",
    )
    retention_batch_size: int = retention_batch_setting()

    step_up_promotion: bool = setting(
        True,
        "Promote an allowed, HIGH-band step-up capture of better quality to the customer's "
        "selfie-derived reference (docs/kyc-tier.md, Step-up promotion)",
    )
    step_up_promotion_margin: float = setting(
        0.1, "How much the capture's quality (0-1) must exceed the active reference's"
    )
    step_up_promotion_window_days: float = setting(
        30.0, "At most one step-up promotion per customer within this many days"
    )

    console_session_seconds: float = setting(
        28800.0, "Lifetime of an analyst console session (signed in again after it)"
    )
    console_login_max_failures: int = setting(
        5, "Failed console sign-ins in a row that lock the account"
    )
    console_lockout_seconds: float = setting(
        900.0, "How long a console account stays locked after too many failed sign-ins"
    )

    webauthn_rp_id: str = setting(
        "localhost", "WebAuthn relying-party id: the console's host name (passkeys are bound to it)"
    )
    webauthn_rp_name: str = setting(
        "Identity Platform console", "Relying-party name shown by browsers"
    )
    webauthn_origins: str = setting(
        "http://localhost:8080",
        "Comma-separated origins the console is served from (https://... in production)",
    )
    webauthn_challenge_seconds: float = setting(
        300.0, "How long a passkey ceremony's challenge can be used (once)"
    )

    webhook_allow_loopback: bool = setting(
        False,
        "Allow webhook endpoints on loopback addresses, over http too (the one-machine run "
        "only: production refuses it); private and link-local targets are always refused",
    )
    webhook_timeout_seconds: float = setting(
        5.0, "Deadline of one webhook attempt, connecting to the whole answer"
    )

    webhook_disable_after: int = setting(
        20, "Failed webhook deliveries in a row that disable the endpoint (audited)"
    )
    webhook_poll_seconds: float = setting(
        1.0, "How often due webhook deliveries (first tries and retries) are sent"
    )
    sdk_session_max_seconds: int = setting(
        900,
        "Longest (and default) lifetime of a browser SDK session token minted by "
        "POST /api/identity/sdk-sessions",
    )
    webhook_ca_file: Path | None = setting(
        None,
        "Extra CA certificates (PEM) trusted for https webhook receivers, besides the "
        "system's (a private CA of the partner's)",
    )

    def validate(self) -> list[tuple[str, str]]:
        problems = super().validate()
        if not 60 <= self.sdk_session_max_seconds <= 3600:
            problems.append(("sdk_session_max_seconds", "must be 60 to 3600 seconds"))
        if len(self.api_key_pepper) < 32:
            problems.append(("api_key_pepper", "must be at least 32 characters"))
        if len(self.pii_index_key) < 32:
            problems.append(("pii_index_key", "must be at least 32 characters"))
        if not [o for o in self.webauthn_origins.split(",") if o.strip()]:
            problems.append(("webauthn_origins", "must name at least one origin"))
        if self.environment == "production" and self.webhook_allow_loopback:
            problems.append(
                ("webhook_allow_loopback", "production refuses loopback webhook targets")
            )
        if problem := ca_file_problem(self.webhook_ca_file):
            problems.append(("webhook_ca_file", problem))
        if not 0 <= self.step_up_promotion_margin <= 1:
            problems.append(("step_up_promotion_margin", "must be between 0 and 1"))
        if self.step_up_promotion_window_days < 0:
            problems.append(("step_up_promotion_window_days", "must not be negative"))
        if self.webhook_disable_after < 1:
            problems.append(("webhook_disable_after", "must be at least 1"))
        problems += keyring_missing(self, "kek_keyring", mesh.KYC_TIER.env_prefix)
        return problems
