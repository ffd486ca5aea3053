"""Protobuf <-> domain converters of the capture-quality service."""

from __future__ import annotations

import numpy as np

from identity_inference.align import ALIGNMENT_ID
from identity_inference.detector import Face
from identity_inference.quality import Measure
from identity_platform_api.capture_quality.v1 import capture_quality_pb2 as pb
from identity_platform_api.common.v1 import types_pb2
from identity_runtime.convert import message
from identity_runtime.errors import invalid_field
from services.capture_quality.faces import (
    REFERENCE,
    SELFIE,
    ColourSample,
    FaceAssessment,
    FaceCrops,
)

PASS, FAIL = pb.QUALITY_VERDICT_PASS, pb.QUALITY_VERDICT_FAIL
UNSPECIFIED = pb.QUALITY_VERDICT_UNSPECIFIED


def capture_kind(kind: int) -> str:
    if kind in (pb.CAPTURE_KIND_UNSPECIFIED, pb.CAPTURE_KIND_SELFIE):
        return SELFIE
    if kind == pb.CAPTURE_KIND_REFERENCE:
        return REFERENCE
    raise invalid_field("kind", "unknown capture kind")


def raw_bgr(image: np.ndarray) -> types_pb2.RawImage:
    return types_pb2.RawImage(
        width=image.shape[1],
        height=image.shape[0],
        format=types_pb2.PIXEL_FORMAT_BGR8,
        pixels=np.ascontiguousarray(image).tobytes(),
    )


def detected_face(face: Face) -> types_pb2.DetectedFace:
    x, y, w, h = face.box
    return types_pb2.DetectedFace(
        box=types_pb2.BoundingBox(x=x, y=y, width=w, height=h),
        landmarks=[types_pb2.Point(x=float(px), y=float(py)) for px, py in face.landmarks],
        confidence=face.score,
    )


def measure(m: Measure) -> pb.QualityMeasure:
    return message(pb.QualityMeasure, m)


def colour(sample: ColourSample) -> types_pb2.ColourSample:
    (fb, fg, fr), (bb, bg, br) = sample.face_bgr, sample.background_bgr
    return types_pb2.ColourSample(
        face_b=fb, face_g=fg, face_r=fr, background_b=bb, background_g=bg, background_r=br
    )


def face_crops(crops: FaceCrops) -> types_pb2.FaceCrops:
    return types_pb2.FaceCrops(
        aligned=types_pb2.AlignedFace(image=raw_bgr(crops.aligned), alignment=crops.alignment),
        pad_crops=[types_pb2.PadCrop(scale=c.scale, image=raw_bgr(c.image)) for c in crops.pad],
    )


def assess_face_response(result: FaceAssessment) -> pb.AssessFaceResponse:
    response = pb.AssessFaceResponse(
        frames=[
            pb.FrameAssessment(
                frame_index=f.index,
                width=f.width,
                height=f.height,
                faces=[detected_face(face) for face in f.faces],
                measures=[measure(m) for m in f.measures],
                verdict=(PASS if f.passed else FAIL) if f.measured else UNSPECIFIED,
                colour=colour(f.colour),
            )
            for f in result.frames
        ],
        best_frame_index=result.best_index,
        verdict=PASS if result.passed else FAIL,
        reasons=[types_pb2.Reason(code=code, message=message) for code, message in result.reasons],
        detector_model=result.detector_model,
    )
    if result.crops is not None:
        response.crops.CopyFrom(face_crops(result.crops))
    response.witness_frame_index = -1
    if result.witness is not None:
        response.witness.CopyFrom(
            types_pb2.AlignedFace(image=raw_bgr(result.witness.aligned), alignment=ALIGNMENT_ID)
        )
        response.witness_frame_index = result.witness.index
    return response
