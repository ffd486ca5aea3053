"""gRPC servicer of the capture-quality service: convert, call the core, convert.

RPCs not overridden here answer UNIMPLEMENTED / NOT_IMPLEMENTED (the error
interceptor turns the generated base's NotImplementedError into a rich status).
"""

from __future__ import annotations

from identity.capture_quality.v1 import capture_quality_pb2_grpc
from services.capture_quality.bootstrap import CaptureQualityCore


class CaptureQualityServiceServicer(capture_quality_pb2_grpc.CaptureQualityServiceServicer):
    def __init__(self, core: CaptureQualityCore):
        self.core = core
