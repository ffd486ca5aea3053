"""Settings of the audit service, from `AUDIT_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from identity_runtime import mesh
from identity_runtime.settings import (
    DatabaseSettings,
    ServiceSettings,
    inline_secret_setting,
    keyring_missing,
    setting,
)
from services.audit.appender import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_SECONDS, DEFAULT_WRITERS
from services.audit.checkpoints import DEFAULT_EVERY_ENTRIES, DEFAULT_EVERY_SECONDS
from services.audit.verifier import DEFAULT_FULL_SECONDS as DEFAULT_VERIFY_FULL_SECONDS
from services.audit.verifier import DEFAULT_INTERVAL_SECONDS as DEFAULT_VERIFY_INTERVAL_SECONDS


@dataclass(frozen=True, kw_only=True)
class AuditSettings(DatabaseSettings, ServiceSettings):
    """Everything the audit service reads from its environment."""

    RESIDENT_ENDPOINTS = ("database_url",)

    hmac_keyring_file: Path | None = setting(
        None,
        "JSON keyring of chain HMAC keys, mounted from a Kubernetes Secret "
        "(the primary signs new entries)",
    )
    hmac_keyring: str = inline_secret_setting("JSON keyring")
    max_batch: int = setting(
        DEFAULT_MAX_BATCH, "Most appends one transaction commits together (group commit)"
    )
    group_commit: bool = setting(
        True,
        "Appends arriving together share one transaction (one writer, one commit); "
        "off: each Append/AppendBatch commits alone (for comparison only)",
    )
    group_commit_max_wait_seconds: float = setting(
        DEFAULT_MAX_WAIT_SECONDS,
        "How long the group-commit writer waits for more appends once none is queued "
        "(0: the commit in flight gathers the next group)",
    )
    group_commit_writers: int = setting(
        DEFAULT_WRITERS,
        "Group-commit writers at once (at most the pool size); above 1 the next group "
        "waits on the chain head lock while one commits, and groups may commit out of "
        "arrival order",
    )

    checkpoint_file: Path | None = setting(
        None,
        "Append-only file of signed chain-head checkpoints, somewhere the database cannot "
        "rewind (its own volume); unset: no checkpoints, a cut tail goes unnoticed",
    )
    checkpoint_key_file: Path | None = setting(
        None, "Ed25519 private key (PEM, PKCS#8) that signs the checkpoints, from a Secret"
    )
    checkpoint_every_entries: int = setting(
        DEFAULT_EVERY_ENTRIES, "A checkpoint at least every this many entries"
    )
    checkpoint_every_seconds: float = setting(
        DEFAULT_EVERY_SECONDS, "A checkpoint at least this often while entries arrive"
    )

    retention_purge_interval_seconds: float = setting(
        86_400.0,
        "How often the chain's prefix past the 7-year retention is purged (behind a "
        "signed checkpoint, never past a legal hold; also once at start-up); 0 = never "
        "in the service (a CronJob runs it)",
    )

    verify_interval_seconds: float = setting(
        DEFAULT_VERIFY_INTERVAL_SECONDS,
        "How often the service verifies its chain (entries appended since the last "
        "pass; the first pass after start-up is a full one) and counts the result in "
        "identity_audit_chain_verifications_total, which IdentityAuditChainBroken reads; "
        "0 = never (the alert then cannot fire)",
    )
    verify_full_interval_seconds: float = setting(
        DEFAULT_VERIFY_FULL_SECONDS,
        "How often a verification pass re-reads the whole chain (an edit of an entry "
        "already verified is found by the next full pass); 0 = every pass",
    )

    def validate(self) -> list[tuple[str, str]]:
        problems = super().validate()
        problems += keyring_missing(self, "hmac_keyring", mesh.AUDIT.env_prefix)
        if not 1 <= self.max_batch <= 1000:
            problems.append(("max_batch", "must be between 1 and 1000"))
        if not 1 <= self.group_commit_writers <= self.database_pool_size:
            problems.append(("group_commit_writers", "must be between 1 and the pool size"))
        if not 0 <= self.group_commit_max_wait_seconds <= 1:
            problems.append(("group_commit_max_wait_seconds", "must be between 0 and 1"))
        if self.checkpoint_file is not None and self.checkpoint_key_file is None:
            problems.append(("checkpoint_key_file", "set it to sign the checkpoints"))
        if self.checkpoint_every_entries < 1:
            problems.append(("checkpoint_every_entries", "must be at least 1"))
        if self.retention_purge_interval_seconds < 0:
            problems.append(("retention_purge_interval_seconds", "must be 0 or more"))
        if self.verify_interval_seconds < 0:
            problems.append(("verify_interval_seconds", "must be 0 or more"))
        if self.verify_full_interval_seconds < 0:
            problems.append(("verify_full_interval_seconds", "must be 0 or more"))
        if not self.checkpoint_every_seconds > 0:
            problems.append(("checkpoint_every_seconds", "must be positive"))
        return problems
