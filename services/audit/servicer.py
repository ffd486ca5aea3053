"""gRPC servicer of the audit service: convert, call the core, convert.

RPCs not overridden here answer UNIMPLEMENTED / NOT_IMPLEMENTED (the error
interceptor turns the generated base's NotImplementedError into a rich status).
"""

from __future__ import annotations

from identity.audit.v1 import audit_pb2_grpc
from services.audit.bootstrap import AuditCore


class AuditServiceServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, core: AuditCore):
        self.core = core
