"""gRPC servicer of the capture-quality service: convert, call the core, convert.

RPCs not overridden here answer UNIMPLEMENTED / NOT_IMPLEMENTED (the error
interceptor turns the generated base's NotImplementedError into a rich status).
"""

from __future__ import annotations

import asyncio
from typing import Any

from identity_platform_api.capture_quality.v1 import capture_quality_pb2, capture_quality_pb2_grpc
from identity_runtime.server import CoreServicer
from services.capture_quality import ktp_mapping, mapping, portraits
from services.capture_quality.bootstrap import CaptureQualityCore


class CaptureQualityServiceServicer(
    CoreServicer[CaptureQualityCore], capture_quality_pb2_grpc.CaptureQualityServiceServicer
):
    async def AssessFace(
        self, request: capture_quality_pb2.AssessFaceRequest, _: Any
    ) -> capture_quality_pb2.AssessFaceResponse:
        kind = mapping.capture_kind(request.kind)
        frames = [frame.data for frame in request.frames]
        crop_frame = request.crop_frame_index if request.HasField("crop_frame_index") else None
        result = await asyncio.to_thread(
            self.core.faces.assess,
            frames,
            kind,
            request.include_crops,
            crop_frame,
            request.measure_crop_frame_only,
        )
        return mapping.assess_face_response(result)

    async def CheckKtp(
        self, request: capture_quality_pb2.CheckKtpRequest, _: Any
    ) -> capture_quality_pb2.CheckKtpResponse:
        report = await self.core.ktp.check(ktp_mapping.ktp_request(request))
        return ktp_mapping.ktp_response(report)

    async def CropPortrait(
        self, request: capture_quality_pb2.CropPortraitRequest, _: Any
    ) -> capture_quality_pb2.CropPortraitResponse:
        cut = await asyncio.to_thread(portraits.crop, self.core.faces, request.image.data)
        return capture_quality_pb2.CropPortraitResponse(
            jpeg=cut.jpeg, face_found=cut.face_found, detector_model=cut.detector_model
        )
