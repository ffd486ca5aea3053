"""gRPC servicer of the liveness service: convert, call the core, convert.

RPCs not overridden here answer UNIMPLEMENTED / NOT_IMPLEMENTED (the error
interceptor turns the generated base's NotImplementedError into a rich status).
"""

from __future__ import annotations

from identity.liveness.v1 import liveness_pb2_grpc
from services.liveness.bootstrap import LivenessCore


class LivenessServiceServicer(liveness_pb2_grpc.LivenessServiceServicer):
    def __init__(self, core: LivenessCore):
        self.core = core
