"""Field rules declared in the contracts ((identity.common.v1.field)) hold in
the validation layer: required fields, lengths, patterns, list sizes; the
refusal names the field (proto path; lowerCamel at the gateway), never its value."""

from __future__ import annotations

import pytest

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.kyc_tier.v1 import customers_pb2, face_pb2, resources_pb2, step_up_pb2
from identity_runtime.validation import FieldViolation, validate

pytestmark = pytest.mark.unit


def refusal(message: object) -> FieldViolation:
    with pytest.raises(FieldViolation) as caught:
        validate(message)  # type: ignore[arg-type]
    return caught.value


def signed_bundle(**attestation: object) -> resources_pb2.CaptureBundle:
    fields = {
        "device_id": "dev_1",
        "nonce": "n" * 16,
        "bundle_sha256": "ab" * 32,
        "signature": b"\x30\x44",
        **attestation,
    }
    bundle = resources_pb2.CaptureBundle(attestation=types_pb2.BundleAttestation(**fields))
    bundle.attestation.captured_at.GetCurrentTime()
    bundle.frames.add().image.data = b"jpeg"
    return bundle


def test_a_complete_request_passes_and_each_missing_part_is_named() -> None:
    request = step_up_pb2.StepUpRequest(
        customer_id="cus_1", challenge_id="chl_1", bundle=signed_bundle()
    )
    validate(request)
    assert refusal(step_up_pb2.StepUpRequest()).metadata == {"field": "customer_id"}
    no_bundle = step_up_pb2.StepUpRequest(customer_id="c", challenge_id="h")
    assert refusal(no_bundle).message == "bundle: is required"
    no_frames = step_up_pb2.StepUpRequest(customer_id="c", challenge_id="h", bundle=signed_bundle())
    del no_frames.bundle.frames[:]
    error = refusal(no_frames)
    assert error.metadata == {"field": "bundle.frames"}
    assert error.renamed(json_names=True).metadata == {"field": "bundle.frames"}
    no_time = step_up_pb2.StepUpRequest(customer_id="c", challenge_id="h", bundle=signed_bundle())
    no_time.bundle.attestation.ClearField("captured_at")
    assert refusal(no_time).renamed(json_names=True).metadata == {
        "field": "bundle.attestation.capturedAt"
    }


def test_lengths_and_patterns() -> None:
    short = step_up_pb2.StepUpRequest(
        customer_id="c", challenge_id="h", bundle=signed_bundle(nonce="1234567")
    )
    assert refusal(short).message == "bundle.attestation.nonce: at least 8 characters"
    bad_hash = step_up_pb2.StepUpRequest(
        customer_id="c", challenge_id="h", bundle=signed_bundle(bundle_sha256="xyz")
    )
    assert "must match" in refusal(bad_hash).message
    nik = customers_pb2.CreateCustomerRequest(external_id="e", nik="32730241079500")
    error = refusal(nik)
    assert error.metadata == {"field": "nik"} and "32730241079500" not in error.message
    validate(customers_pb2.CreateCustomerRequest(external_id="e", nik="3273024107950003"))
    long_name = customers_pb2.CreateCustomerRequest(external_id="e", full_name="x" * 201)
    assert refusal(long_name).message == "full_name: at most 200 characters"


def test_optional_messages_stay_optional() -> None:
    # A match bound to a liveness verification sends no probe image.
    validate(face_pb2.MatchFaceRequest(customer_id="c", liveness_verification_id="v"))
