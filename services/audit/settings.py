"""Settings of the audit service, from `AUDIT_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from identity_runtime.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class AuditSettings(ServiceSettings):
    """Everything the audit service reads from its environment."""
