"""Domain errors <-> `google.rpc.Status` with one `ErrorInfo`."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from identity_platform_api.common.v1 import errors_pb2
from identity_runtime.errors import ERROR_DOMAIN, DomainError, RemoteError

KNOWN_REASONS = frozenset(
    name.removeprefix("ERROR_REASON_")
    for name in errors_pb2.ErrorReason.keys()
    if name != "ERROR_REASON_UNSPECIFIED"
)


def to_status(error: DomainError, request_id: str = "") -> status_pb2.Status:
    metadata = dict(error.metadata)
    if request_id:
        metadata.setdefault("request_id", request_id)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(
        code=code_pb2.Code.Value(error.code), message=error.message, details=[detail]
    )


def to_grpc_status(error: DomainError, request_id: str = "") -> grpc.Status:
    return rpc_status.to_status(to_status(error, request_id))


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def status_from_rpc_error(exc: grpc.RpcError) -> status_pb2.Status:
    """The rich status of a failed call, or a plain one built from its code."""
    status = None
    try:
        # Typed for grpc.Call; it reads only what an AioRpcError has too.
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except (ValueError, AttributeError):
        status = None
    if status is None:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = exc.details() if hasattr(exc, "details") else str(exc)
        status = status_pb2.Status(code=code.value[0], message=details or "")
    return status


_REASON_FOR_BARE_CODE = {
    "UNAVAILABLE": "DEPENDENCY_UNAVAILABLE",
    "DEADLINE_EXCEEDED": "DEADLINE_EXCEEDED",
    "UNIMPLEMENTED": "NOT_IMPLEMENTED",
    "RESOURCE_EXHAUSTED": "PAYLOAD_TOO_LARGE",
    "CANCELLED": "DEADLINE_EXCEEDED",
}


def remote_error(exc: grpc.RpcError, service: str = "") -> RemoteError:
    """A downstream failure as a domain error that keeps its code and reason."""
    status = status_from_rpc_error(exc)
    code_name = (
        code_pb2.Code.Name(status.code) if status.code in code_pb2.Code.values() else "UNKNOWN"
    )
    info = error_info(status)
    if info is not None:
        reason, metadata = info.reason, dict(info.metadata)
    else:
        reason, metadata = _REASON_FOR_BARE_CODE.get(code_name, "INTERNAL"), {}
    if service and code_name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
        metadata.setdefault("service", service)
    metadata.pop("request_id", None)
    if code_name == "UNKNOWN":
        code_name = "INTERNAL"
    return RemoteError(code_name, status.message, reason, metadata)
