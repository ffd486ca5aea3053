"""The detector's input in one pass (`letterbox_blob`) is exactly the letterboxed
canvas as a float blob, for frames smaller, larger and the size of the input,
and for a region cut out of a frame (issue 15: capture-quality's CPU)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from identity_inference.detector import ROI_INPUT_SIZE, FaceDetector
from identity_inference.manifest import load_catalogue


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    manifest = load_catalogue()["yunet-2023mar"]
    return FaceDetector(SimpleNamespace(manifest=manifest))  # type: ignore[arg-type]


def frame(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(height * width).integers(0, 256, (height, width, 3), np.uint8)


@pytest.mark.parametrize(
    ("height", "width", "size"),
    [(640, 640, None), (480, 640, None), (1280, 960, None), (300, 200, None), (700, 500, 256)],
)
def test_the_one_pass_blob_is_the_letterboxed_canvas(
    detector: FaceDetector, height: int, width: int, size: int | None
) -> None:
    image = frame(height, width)
    canvas, expected_scale = detector.letterbox(image, size)
    blob, scale = detector.letterbox_blob(image, size)
    assert scale == expected_scale
    assert blob.dtype == np.float32 and blob.flags["C_CONTIGUOUS"]
    assert np.array_equal(blob, detector.to_blob(canvas))


def test_a_region_of_a_frame_gives_the_same_blob_as_its_copy(detector: FaceDetector) -> None:
    region = frame(900, 1200)[100:700, 250:850]
    blob, _ = detector.letterbox_blob(region, ROI_INPUT_SIZE)
    copied, _ = detector.letterbox_blob(region.copy(), ROI_INPUT_SIZE)
    canvas, _ = detector.letterbox(region, ROI_INPUT_SIZE)
    assert np.array_equal(blob, copied) and np.array_equal(blob, detector.to_blob(canvas))


def test_a_region_of_the_input_size_is_taken_as_it_is(detector: FaceDetector) -> None:
    region = frame(900, 1200)[100:356, 300:556]
    blob, scale = detector.letterbox_blob(region, ROI_INPUT_SIZE)
    assert scale == 1.0
    assert np.array_equal(blob[0].transpose(1, 2, 0), region.astype(np.float32))
