"""Builds the audit core from settings: the one place that chooses implementations."""

from __future__ import annotations

from identity_runtime.server import Core
from services.audit.settings import AuditSettings


class AuditCore(Core):
    """The audit service's domain objects."""


async def build(settings: AuditSettings) -> AuditCore:
    return AuditCore()
