"""Requests into the flows' request types (captures, verdicts, upgrades,
devices), and the codec of the capture bundle as it is sealed at rest.

A bundle is sealed exactly as received: `bundle_input` serialises the
request's CaptureBundle (deterministically) and `ProtoBundleCodec` reads it
back when the face-match flow reopens a liveness capture. Both sit here, at
the edge, so no protobuf object reaches the flows.
"""

from __future__ import annotations

import math

from identity_platform_api.kyc_tier.v1 import (
    devices_pb2,
    face_pb2,
    ktp_pb2,
    kyc_pb2,
    resources_pb2,
    step_up_pb2,
)
from identity_runtime.convert import same_named, time_field
from identity_runtime.errors import invalid_field
from services.kyc_tier.bundles import BundleInput
from services.kyc_tier.flows.devices import DeviceKey
from services.kyc_tier.flows.dukcapil import DukcapilRequest, DukcapilVerdict
from services.kyc_tier.flows.face import LivenessRequest, MatchRequest
from services.kyc_tier.flows.ktp import KtpCaptureRequest
from services.kyc_tier.flows.kyc import UpgradeRequest
from services.kyc_tier.flows.step_up import StepUpRequest
from services.kyc_tier.mapping.consent import consented
from services.kyc_tier.mapping.enums import tier_from_proto, when
from services.kyc_tier.ports import Attestation, StoredFrames


def bundle_input(bundle: resources_pb2.CaptureBundle) -> BundleInput:
    attestation = bundle.attestation
    captured_at = time_field(attestation, "captured_at")
    return BundleInput(
        frames=tuple(frame.image.data for frame in bundle.frames),
        offsets_ms=tuple(frame.offset_ms for frame in bundle.frames),
        baseline=tuple(frame.baseline for frame in bundle.frames),
        sensors=_sensors(bundle.sensors) if bundle.HasField("sensors") else b"",
        attestation=same_named(Attestation, attestation, captured_at=captured_at),
        captured_at=captured_at,
        # Metadata the person did not consent to is never sealed (mapping/consent.py).
        raw=consented(bundle).SerializeToString(deterministic=True),
    )


def _sensors(sensors: resources_pb2.SensorData) -> bytes:
    """The sensor data as the device signed it, once its values are in range
    (a proto float may be NaN or infinite; the contract bounds the brightness)."""
    if not 0.0 <= sensors.screen_brightness <= 1.0:
        raise invalid_field("bundle.sensors.screen_brightness", "must be between 0 and 1")
    if not 0.0 <= sensors.ambient_lux < math.inf:
        raise invalid_field("bundle.sensors.ambient_lux", "must be a number of lux, 0 or more")
    if not all(math.isfinite(v) for r in sensors.readings for v in (r.x, r.y, r.z)):
        raise invalid_field("bundle.sensors.readings", "must be finite numbers")
    return sensors.SerializeToString(deterministic=True)


class ProtoBundleCodec:
    """Reads back the bundles `bundle_input` serialised (ports.BundleCodec)."""

    def decode(self, raw: bytes) -> StoredFrames:
        parsed = resources_pb2.CaptureBundle()
        parsed.ParseFromString(raw)
        return StoredFrames(
            frames=tuple(frame.image.data for frame in parsed.frames),
            baseline=tuple(frame.baseline for frame in parsed.frames),
        )


def ktp_ocr_fields(fields: ktp_pb2.KtpOcrFields) -> dict[str, str]:
    """Submitted OCR fields by KtpField name (capture-quality's vocabulary)."""
    return {
        "nik": fields.nik,
        "name": fields.full_name,
        "birth_place": fields.birth_place,
        "birth_date": fields.birth_date,
        "gender": fields.gender,
        "address": fields.address,
        "rt_rw": fields.rt_rw,
        "village": fields.village,
        "district": fields.district,
        "religion": fields.religion,
        "marital_status": fields.marital_status,
        "occupation": fields.occupation,
        "nationality": fields.nationality,
        "valid_until": fields.valid_until,
        "province": fields.province,
        "regency": fields.regency,
        "blood_type": fields.blood_type,
    }


def ktp_capture_request(request: ktp_pb2.SubmitKtpCaptureRequest) -> KtpCaptureRequest:
    return same_named(
        KtpCaptureRequest,
        request,
        bundle=bundle_input(request.bundle),
        ocr_fields=ktp_ocr_fields(request.ocr_fields),
    )


def step_up_request(request: step_up_pb2.StepUpRequest) -> StepUpRequest:
    return same_named(
        StepUpRequest,
        request,
        bundle=bundle_input(request.bundle),
        reference_image=request.reference_image.data,
    )


def match_request(request: face_pb2.MatchFaceRequest) -> MatchRequest:
    return same_named(
        MatchRequest,
        request,
        probe_image=request.probe_image.data,
        reference_image=request.reference_image.data,
    )


def liveness_request(request: face_pb2.CheckFaceLivenessRequest) -> LivenessRequest:
    return same_named(LivenessRequest, request, bundle=bundle_input(request.bundle))


def dukcapil_request(request: kyc_pb2.SubmitDukcapilVerdictRequest) -> DukcapilRequest:
    verdict = same_named(
        DukcapilVerdict,
        request.verdict,
        field_matches=dict(request.verdict.field_matches),
        verified_at=when(request.verdict.verified_at),
    )
    return same_named(DukcapilRequest, request, verdict=verdict, portrait=request.portrait.data)


def upgrade_request(request: kyc_pb2.UpgradeKycRequest) -> UpgradeRequest:
    target = tier_from_proto(request.target_tier, "target_tier")
    return same_named(UpgradeRequest, request, target_tier=target)


def device_key(request: devices_pb2.RegisterDeviceRequest) -> DeviceKey:
    return same_named(DeviceKey, request)
