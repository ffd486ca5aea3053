"""Domain errors <-> `google.rpc.Status` with one `ErrorInfo`.

Every error a service answers names its `origin` in the ErrorInfo metadata:
the mesh service where it arose. A service that only passes on a
downstream failure keeps the downstream's origin, so a caller can tell "the
service I called failed" from "it told me one of its dependencies failed"
(the client's circuit breaker counts only the first). Messages never carry
gRPC's transport text: it names internal addresses (`ipv4:10.0.0.7:50064`).
"""

from __future__ import annotations

import re

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


# ErrorInfo metadata key: the mesh service where the error arose.
ORIGIN_KEY = "origin"

# What gRPC's own status text may carry of the network: resolver addresses
# (`ipv4:10.0.0.7:50064`, `ipv6:[::1]:50064`, `unix:/run/x.sock`, `dns:host:port`)
# and bare IP:port pairs. A bracketed IPv6 literal holds at least two colons,
# so a field path's index (`frames[0].data`) is not one.
_ADDRESS = re.compile(
    r"(?:\b(?:ipv4|ipv6|unix|unix-abstract|dns|vsock):\S+)"
    r"|(?:\[[0-9a-fA-F.]*:[0-9a-fA-F.]*:[0-9a-fA-F:.]*\](?::\d+)?)"
    r"|(?:\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b)"
)


def scrub_addresses(text: str) -> str:
    """`text` with every network address replaced by `<address>`."""
    return _ADDRESS.sub("<address>", text)


def to_status(error: DomainError, request_id: str = "", origin: str = "") -> status_pb2.Status:
    """The error as a Status; `origin` (this service's name) is recorded unless
    the error already names one (a downstream failure passed on)."""
    metadata = dict(error.metadata)
    if request_id:
        metadata.setdefault("request_id", request_id)
    if origin:
        metadata.setdefault(ORIGIN_KEY, origin)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(
        code=code_pb2.Code.Value(error.code),
        message=scrub_addresses(error.message),
        details=[detail],
    )


def to_grpc_status(error: DomainError, request_id: str = "", origin: str = "") -> grpc.Status:
    return rpc_status.to_status(to_status(error, request_id, origin))


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


# What a failure without our ErrorInfo (gRPC's own: no connection, no time
# left, a crash outside the error interceptor) is reported as; gRPC's text
# names addresses and internals and is not passed on.
_MESSAGE_FOR_BARE_CODE = {
    "UNAVAILABLE": "the {service} service is unavailable",
    "DEADLINE_EXCEEDED": "the {service} service did not answer within the deadline",
    "CANCELLED": "the call to the {service} service was cancelled",
    "RESOURCE_EXHAUSTED": "a message to or from the {service} service exceeded the size limit",
    "UNIMPLEMENTED": "the {service} service does not implement this call",
}


def error_origin(exc: grpc.RpcError) -> str:
    """The mesh service a failed call's error arose in ("" when it carries no
    ErrorInfo of ours: a transport failure of the service called)."""
    info = error_info(status_from_rpc_error(exc))
    if info is None or info.domain != ERROR_DOMAIN:
        return ""
    return info.metadata.get(ORIGIN_KEY, "")


def remote_error(exc: grpc.RpcError, service: str = "") -> RemoteError:
    """A downstream failure as a domain error that keeps its code, reason and
    origin; `service` is the service called (the origin when the failure is
    its own or the transport's)."""
    status = status_from_rpc_error(exc)
    code_name = (
        code_pb2.Code.Name(status.code) if status.code in code_pb2.Code.values() else "UNKNOWN"
    )
    info = error_info(status)
    if info is not None and info.domain == ERROR_DOMAIN:
        reason, metadata = info.reason, dict(info.metadata)
        message = scrub_addresses(status.message)
    else:
        reason, metadata = _REASON_FOR_BARE_CODE.get(code_name, "INTERNAL"), {}
        template = _MESSAGE_FOR_BARE_CODE.get(
            code_name, "the {service} service failed; quote the request id when reporting it"
        )
        message = template.format(service=service or "downstream")
    if service and code_name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
        metadata.setdefault("service", service)
    if service:
        metadata.setdefault(ORIGIN_KEY, service)
    metadata.pop("request_id", None)
    if code_name == "UNKNOWN":
        code_name = "INTERNAL"
    return RemoteError(code_name, message, reason, metadata)
