"""Decoding within a pixel budget, the request budget of AssessFace, and the
renaming of downstream image fields to the API's names."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from gateway.transcoding import api_field_path, rename_error_field
from identity_inference import images
from identity_platform_api.kyc_tier.v1 import face_pb2, step_up_pb2
from identity_runtime.errors import InvalidArgument, RemoteError
from services.capture_quality.faces import DecodeBudget
from services.kyc_tier.flows.biometrics import api_field, images_from


def _encoded(width: int, height: int, extension: str) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (30, 120, 220)
    cv2.circle(image, (width // 3, height // 2), min(width, height) // 4, (250, 250, 250), -1)
    ok, data = cv2.imencode(extension, image)
    assert ok
    return data.tobytes()


class CountingGate:
    """A semaphore that counts how often it was taken."""

    def __init__(self) -> None:
        self.inner = threading.BoundedSemaphore(1)
        self.taken = 0

    def __enter__(self) -> None:
        self.inner.acquire()
        self.taken += 1

    def __exit__(self, *_: object) -> None:
        self.inner.release()


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp"])
def test_a_large_frame_is_downscaled_at_decode_keeping_its_shape(extension: str) -> None:
    gate = CountingGate()
    pixels = images.decode(
        _encoded(4000, 3000, extension),
        field="frames[0].data",
        max_pixels_out=3_000_000,
        gate=gate,  # type: ignore[arg-type]
    )
    height, width = pixels.shape[:2]
    assert width * height <= 3_000_000 and width * height > 2_900_000
    assert abs(width / height - 4 / 3) < 0.01
    # A JPEG is scaled inside the decoder (never at full size): no gate needed.
    assert gate.taken == (0 if extension == ".jpg" else 1)


def test_a_frame_within_the_budget_is_decoded_as_it_is() -> None:
    gate = CountingGate()
    pixels = images.decode(_encoded(1280, 720, ".png"), max_pixels_out=3_000_000, gate=gate)  # type: ignore[arg-type]
    assert pixels.shape == (720, 1280, 3) and gate.taken == 0
    assert images.decode(_encoded(1280, 720, ".jpg")).shape == (720, 1280, 3)


def test_the_request_budget_is_checked_on_the_declared_pixels() -> None:
    budget = DecodeBudget(frame_pixels=3_000_000, request_pixels=100_000_000)
    header = images.ImageHeader(images.PNG, 6300, 6300)
    budget.check([header, header])  # 79.4 MP
    with pytest.raises(InvalidArgument) as caught:
        budget.check([header, header, header])
    error = caught.value
    assert error.reason == "IMAGE_BUDGET_EXCEEDED"
    assert error.metadata == {
        "field": "frames",
        "declared_pixels": str(3 * 6300 * 6300),
        "max_request_pixels": "100000000",
    }


@pytest.mark.parametrize(
    ("sent", "frames_field", "expected"),
    [
        ("frames[3].data", "bundle.frames", "bundle.frames[3].image.data"),
        ("frames", "bundle.frames", "bundle.frames"),
        ("pad_crops", "bundle.frames", "bundle.frames"),
        ("pad_crops[1].image", "bundle.frames", "bundle.frames"),
        ("card_image", "bundle.frames", "bundle.frames[0].image"),
        # A KTP bundle's flash frames follow its card (black-box probe: it was "flash_frames").
        ("flash_frames[1]", "bundle.frames", "bundle.frames[2].image"),
        ("flash_frames", "bundle.frames", "bundle.frames"),
        ("frames[0].data", "probe_image", "probe_image.data"),
        ("frames", "reference_image", "reference_image"),
        ("frames[2].data", "liveness_verification_id", "liveness_verification_id"),
        ("attestation.bundle_sha256", "bundle.frames", "bundle.attestation.bundle_sha256"),
        ("attestation.bundle_sha256", "probe_image", None),
        ("customer_id", "bundle.frames", None),
    ],
)
def test_downstream_image_fields_are_named_as_the_request_sent_them(
    sent: str, frames_field: str, expected: str | None
) -> None:
    assert api_field(sent, frames_field) == expected


def test_images_from_renames_a_downstream_refusal() -> None:
    with pytest.raises(RemoteError) as caught, images_from("bundle.frames"):
        raise RemoteError(
            "INVALID_ARGUMENT",
            "pad_crops: a crop at scale 2.7 is required",
            "INVALID_FIELD",
            {"field": "pad_crops"},
        )
    assert caught.value.metadata == {"field": "bundle.frames"}
    assert caught.value.message == "bundle.frames: a crop at scale 2.7 is required"
    assert "pad_crops" not in str(caught.value)


def test_the_gateway_spells_a_service_field_path_as_the_api_does() -> None:
    step_up = step_up_pb2.StepUpRequest.DESCRIPTOR
    assert api_field_path(step_up, "bundle.frames[2].image.data") == "bundle.frames[2].image.data"
    assert api_field_path(step_up, "customer_id") == "customerId"
    assert api_field_path(step_up, "reference_image.data") == "referenceImage.data"
    assert api_field_path(step_up, "bundle.attestation.bundle_sha256") == (
        "bundle.attestation.bundleSha256"
    )
    assert api_field_path(step_up, "pad_crops") is None
    assert api_field_path(face_pb2.MatchFaceRequest.DESCRIPTOR, "probe_image.data") == (
        "probeImage.data"
    )
    error = InvalidArgument(
        "customer_id: must not be empty", "INVALID_FIELD", {"field": "customer_id"}
    )
    rename_error_field(error, step_up)
    assert error.metadata == {"field": "customerId"}
    assert error.message == "customerId: must not be empty"
