"""The audit outbox's sink: the audit service's Append and AppendBatch, as
kyc-tier (the shared sink is identity_runtime.audit_delivery's)."""

from __future__ import annotations

from identity_runtime import audit_delivery
from identity_runtime.clients import ClientFactory


class GrpcAuditSink(audit_delivery.GrpcAuditSink):
    """Appends as "service:kyc-tier"; entry keys `kyc-tier:outbox:<id>`."""

    def __init__(self, clients: ClientFactory):
        super().__init__(clients, service_actor="service:kyc-tier", key_prefix="kyc-tier:outbox")
