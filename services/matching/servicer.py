"""gRPC servicer of the matching service: convert, call the core, convert.

RPCs not overridden here answer UNIMPLEMENTED / NOT_IMPLEMENTED (the error
interceptor turns the generated base's NotImplementedError into a rich status).
"""

from __future__ import annotations

from identity.matching.v1 import matching_pb2_grpc
from services.matching.bootstrap import MatchingCore


class MatchingServiceServicer(matching_pb2_grpc.MatchingServiceServicer):
    def __init__(self, core: MatchingCore):
        self.core = core
