"""gRPC servicer of the capture-quality service: convert, call the core, convert.

RPCs not overridden here answer UNIMPLEMENTED / NOT_IMPLEMENTED (the error
interceptor turns the generated base's NotImplementedError into a rich status).
"""

from __future__ import annotations

from typing import Any

from identity.capture_quality.v1 import capture_quality_pb2, capture_quality_pb2_grpc
from services.capture_quality import mapping
from services.capture_quality.bootstrap import CaptureQualityCore


class CaptureQualityServiceServicer(capture_quality_pb2_grpc.CaptureQualityServiceServicer):
    def __init__(self, core: CaptureQualityCore):
        self.core = core

    async def CheckKtp(self, request: capture_quality_pb2.CheckKtpRequest, _: Any) -> capture_quality_pb2.CheckKtpResponse:
        report = await self.core.ktp.check(mapping.ktp_request(request))
        return mapping.ktp_response(report)
