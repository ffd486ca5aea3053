"""Protobuf <-> domain converters of the liveness service."""

from __future__ import annotations

import dataclasses

import numpy as np

from identity_capture import signatures
from identity_capture.limits import MAX_FRAMES, NEGATIVE_FLASH_OFFSET, negative_flash_offset
from identity_capture.policy import LivenessPolicy
from identity_inference.images import raw_bgr
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.liveness.v1 import liveness_pb2 as pb
from identity_runtime.convert import message, time_field
from identity_runtime.errors import InvalidArgument, invalid_field
from services.liveness import flash
from services.liveness.checks import IssuedChallenge, LivenessDecision, LivenessRequest
from services.liveness.devices import DeviceRecord

_PURPOSES = {
    types_pb2.CHALLENGE_PURPOSE_KTP_CAPTURE: "ktp_capture",
    types_pb2.CHALLENGE_PURPOSE_FACE_LIVENESS: "face_liveness",
    types_pb2.CHALLENGE_PURPOSE_STEP_UP: "step_up",
}
_PURPOSE_ENUM = {v: k for k, v in _PURPOSES.items()}
_ALGORITHMS = {
    types_pb2.KEY_ALGORITHM_ECDSA_P256_SHA256: signatures.ECDSA_P256,
    types_pb2.KEY_ALGORITHM_ED25519: signatures.ED25519,
}
_ALGORITHM_ENUM = {v: k for k, v in _ALGORITHMS.items()}


def purpose(value: types_pb2.ChallengePurpose.ValueType) -> str:
    if value not in _PURPOSES:
        raise invalid_field("purpose", "required")
    return _PURPOSES[value]


def algorithm(value: types_pb2.KeyAlgorithm.ValueType) -> str:
    if value not in _ALGORITHMS:
        raise invalid_field("algorithm", "ECDSA P-256 or Ed25519")
    return _ALGORITHMS[value]


def challenge(issued: IssuedChallenge) -> types_pb2.FlashChallenge:
    return message(
        types_pb2.FlashChallenge,
        issued,
        purpose=_PURPOSE_ENUM[issued.purpose],
        sequence=[types_pb2.FlashColour(hex=c) for c in issued.sequence],
    )


def device(record: DeviceRecord) -> pb.Device:
    return message(pb.Device, record, algorithm=_ALGORITHM_ENUM[record.algorithm])


def _pad_crop(index: int, crop: types_pb2.PadCrop) -> tuple[float, np.ndarray]:
    field = f"pad_crops[{index}].image"
    image = crop.image
    if image.format != types_pb2.PIXEL_FORMAT_BGR8:
        raise InvalidArgument(f"{field}: must be BGR8", "RAW_IMAGE_INVALID", {"field": field})
    if (image.width, image.height) != (80, 80):
        raise InvalidArgument(
            f"{field}: PAD crops are 80x80", "RAW_IMAGE_INVALID", {"field": field}
        )
    return float(crop.scale), raw_bgr(image.width, image.height, image.pixels, 3, field)


def liveness_request(request: pb.CheckLivenessRequest) -> LivenessRequest:
    if len(request.frames) > MAX_FRAMES:
        raise invalid_field("frames", f"at most {MAX_FRAMES} frames")
    # Refused here, not trusted to the caller's validation: the flash check
    # would otherwise have to guess which colour such a frame answered.
    negative = negative_flash_offset((f.offset_ms, f.baseline) for f in request.frames)
    if negative is not None:
        raise invalid_field(f"frames[{negative}].offset_ms", NEGATIVE_FLASH_OFFSET)
    return dataclasses.replace(
        _protocol_request(request),
        pad_crops=dict(_pad_crop(i, c) for i, c in enumerate(request.pad_crops)),
        policy=org_policy(request.policy),
        frames=[
            flash.FrameColour(
                offset_ms=f.offset_ms,
                face_bgr=(f.colour.face_b, f.colour.face_g, f.colour.face_r),
                face_found=f.face_found,
            )
            for f in request.frames
            # The unflashed baseline frame is not part of the sequence.
            if not f.baseline
        ],
        baseline_without_face=any(f.baseline and not f.face_found for f in request.frames),
    )


def attestation_request(request: pb.CheckAttestationRequest) -> LivenessRequest:
    return _protocol_request(request)


def _protocol_request(
    request: pb.CheckLivenessRequest | pb.CheckAttestationRequest,
) -> LivenessRequest:
    """What both requests carry for the protocol checks (signature, challenge,
    nonce), without evidence: CheckAttestation is CheckLiveness without it."""
    attestation = request.attestation
    return LivenessRequest(
        customer_id=request.customer_id,
        purpose=purpose(request.purpose),
        challenge_id=request.challenge_id,
        device_id=attestation.device_id,
        nonce=attestation.nonce,
        bundle_sha256=attestation.bundle_sha256,
        signature=attestation.signature,
        captured_at=time_field(attestation, "captured_at"),
        computed_bundle_sha256=request.computed_bundle_sha256,
        resume=request.resume,
        pad_crops={},
        frames=[],
    )


def org_policy(policy: pb.LivenessPolicy) -> LivenessPolicy:
    if len(policy.pad_models) > 8 or any(not 0 < len(m) <= 64 for m in policy.pad_models):
        raise invalid_field("policy.pad_models", "at most 8 model ids of 1 to 64 characters")
    return LivenessPolicy(
        pad_models=tuple(policy.pad_models),
        pad_threshold=policy.pad_threshold if policy.HasField("pad_threshold") else None,
        flash_check=not policy.flash_check_disabled,
        shadow=not policy.shadow_disabled,
    )


def liveness_response(decision: LivenessDecision) -> pb.CheckLivenessResponse:
    response = pb.CheckLivenessResponse(
        live=decision.live,
        pad_score=decision.pad.fused_live_score if decision.pad else 0.0,
        flash_score=decision.flash_score,
        reasons=[
            types_pb2.Reason(code=code, message=message) for code, message in decision.reasons
        ],
        decision_basis=decision.decision_basis,
        device_id=decision.device_id,
        pad_threshold=decision.pad.threshold if decision.pad else 0.0,
    )
    if decision.pad is not None:
        response.pad_models.extend(
            pb.PadModelScore(model_id=s.model_id, crop_scale=s.crop_scale, live_score=s.live_score)
            for s in decision.pad.scores
        )
    return response
