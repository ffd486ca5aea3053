"""Protobuf <-> domain conversions for CheckKtp (KTP cards); faces are in mapping.py."""

from __future__ import annotations

from identity_ktp import fields as ktp_fields
from identity_ktp.analysis import KtpReport
from identity_ktp.nik import RULE_MESSAGES, NikCheck
from identity_ktp.portrait import ALIGNMENT, Face
from identity_platform_api.capture_quality.v1 import capture_quality_pb2 as pb
from identity_platform_api.common.v1 import types_pb2
from services.capture_quality.faces import ColourSample
from services.capture_quality.ktp import KtpCheckRequest
from services.capture_quality.mapping import colour


def ktp_request(request: pb.CheckKtpRequest) -> KtpCheckRequest:
    return KtpCheckRequest(
        image=request.card_image.data,
        submitted_nik=request.submitted_nik,
        submitted_fields=dict(request.submitted_fields),
        include_portrait_crop=request.include_portrait_crops,
        flash_frames=tuple(frame.data for frame in request.flash_frames),
    )


def detected_face(face: Face) -> types_pb2.DetectedFace:
    x, y, w, h = face.box
    return types_pb2.DetectedFace(
        box=types_pb2.BoundingBox(x=x, y=y, width=w, height=h),
        landmarks=[types_pb2.Point(x=px, y=py) for px, py in face.landmarks],
        confidence=face.confidence,
    )


def nik_validation(check: NikCheck) -> pb.NikValidation:
    return pb.NikValidation(
        valid=check.valid,
        reasons=[
            types_pb2.Reason(code=rule, message=RULE_MESSAGES[rule]) for rule in check.reasons
        ],
        province_code=check.province_code,
        province_name=check.province_name,
        regency_code=check.regency_code,
        regency_name=check.regency_name,
        district_code=check.district_code,
        birth_date=check.birth_date.isoformat() if check.birth_date else "",
        gender=check.gender,
        regency_current_code=check.regency_current_code,
        district_name=check.district_name,
    )


def ktp_response(report: KtpReport) -> pb.CheckKtpResponse:
    response = pb.CheckKtpResponse(
        card_found=report.card_found,
        card_corners=[types_pb2.Point(x=x, y=y) for x, y in report.card_corners],
        measures=[
            pb.QualityMeasure(
                name=m.name,
                value=m.value,
                threshold=m.threshold,
                passed=m.passed,
                reason_code=m.reason_code,
            )
            for m in report.measures
        ],
        portrait_found=report.portrait is not None,
        fields=[
            pb.KtpField(
                name=name,
                value=report.fields[name].value,
                confidence=report.fields[name].confidence,
            )
            for name in ktp_fields.FIELD_NAMES
            if name in report.fields
        ],
        tamper_signals=[
            pb.TamperSignal(code=s.code, score=s.score, decisive=s.decisive, detail=s.detail)
            for s in report.signals
        ],
        verdict=pb.QUALITY_VERDICT_PASS if report.passed else pb.QUALITY_VERDICT_FAIL,
        reasons=[types_pb2.Reason(code=r.code, message=r.message) for r in report.reasons],
        ocr_model=report.ocr_model,
        flash_colours=[colour(ColourSample(*sample)) for sample in report.flash_colours],
    )
    if report.portrait is not None:
        response.portrait.CopyFrom(detected_face(report.portrait))
    if report.aligned_portrait is not None:
        crop = report.aligned_portrait
        response.portrait_crops.aligned.CopyFrom(
            types_pb2.AlignedFace(
                image=types_pb2.RawImage(
                    width=crop.shape[1],
                    height=crop.shape[0],
                    format=types_pb2.PIXEL_FORMAT_BGR8,
                    pixels=crop.tobytes(),
                ),
                alignment=ALIGNMENT,
            )
        )
    if report.nik is not None:
        response.nik.CopyFrom(nik_validation(report.nik))
    return response
