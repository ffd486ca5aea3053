"""Protobuf <-> domain conversions for audit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from google.protobuf.timestamp_pb2 import Timestamp

from identity_platform_api.audit.v1 import audit_pb2
from identity_runtime.convert import message
from identity_runtime.errors import DomainError, invalid_field
from services.audit.chain import Draft, Entry, VerifyReport
from services.audit.log import QueryFilter

_OUTCOME_TO_PROTO = {
    "success": audit_pb2.OUTCOME_SUCCESS,
    "denied": audit_pb2.OUTCOME_DENIED,
    "failed": audit_pb2.OUTCOME_FAILED,
}
_OUTCOME_FROM_PROTO = {v: k for k, v in _OUTCOME_TO_PROTO.items()}


def _time(
    message: audit_pb2.QueryEntriesRequest, field: Literal["start_time", "end_time"]
) -> datetime | None:
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    if value.seconds < 0:
        raise invalid_field(field, "must be after 1970")
    return value.ToDatetime(tzinfo=UTC)


def draft(
    request: audit_pb2.AppendRequest,
    tenant_id: str,
    actor: str,
    request_id: str,
    entry_key: str = "",
) -> Draft:
    outcome = _OUTCOME_FROM_PROTO.get(request.outcome)
    if outcome is None:
        raise invalid_field("outcome", "must be SUCCESS, DENIED or FAILED")
    return Draft(
        tenant_id=tenant_id,
        actor=request.actor or actor,
        action=request.action,
        subject=request.subject,
        outcome=outcome,
        request_id=request_id,
        evidence_hashes=dict(request.evidence_hashes),
        details=dict(request.details),
        entry_key=entry_key,
    )


def query(request: audit_pb2.QueryEntriesRequest, tenant_id: str) -> QueryFilter:
    return QueryFilter(
        tenant_id=tenant_id,
        subject=request.subject,
        action=request.action,
        start_time=_time(request, "start_time"),
        end_time=_time(request, "end_time"),
    )


def entry(value: Entry) -> audit_pb2.AuditEntry:
    return message(
        audit_pb2.AuditEntry,
        value,
        outcome=_OUTCOME_TO_PROTO[value.outcome],
        evidence_hashes=dict(value.evidence_hashes),
        details=dict(value.details),
    )


def batch_result(result: Entry | DomainError) -> audit_pb2.AppendBatchResult:
    if isinstance(result, DomainError):
        return audit_pb2.AppendBatchResult(
            refused=audit_pb2.EntryRefusal(
                reason=result.reason,
                field=result.metadata.get("field", ""),
                message=result.message,
            )
        )
    return audit_pb2.AppendBatchResult(entry=entry(result))


def verify_response(report: VerifyReport) -> audit_pb2.VerifyChainResponse:
    return message(
        audit_pb2.VerifyChainResponse,
        report,
        verified_from_sequence=report.from_sequence,
        head_sequence=report.last_sequence,
        head_hmac=report.last_hmac,
    )
