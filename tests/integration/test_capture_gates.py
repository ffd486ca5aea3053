"""The capture gates on constructed cases, with the real detector: phantom versus
real second faces, faces cut at each frame edge, upscaled pictures, and the
framings PAD can and cannot judge (issue 17)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from identity_inference import framing, quality, resolution
from identity_inference.detector import Face
from identity_inference.pad import pad_crop
from identity_inference.pipeline import FacePipeline
from tests.support.biometrics import FACES, photo

pytestmark = [pytest.mark.models]


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline.load(threads=1)


def measures(pipeline: FacePipeline, image: np.ndarray) -> dict[str, quality.Measure]:
    faces = pipeline.detector.detect(image)
    return {m.name: m for m in quality.assess(image, faces, quality.SELFIE)}


def codes(pipeline: FacePipeline, image: np.ndarray) -> set[str]:
    return {m.reason_code for m in measures(pipeline, image).values() if not m.passed}


def selfie() -> np.ndarray:
    """img1 cut to a selfie framing (face ~420 px wide, room around it for PAD)."""
    return photo(FACES / "img1.jpg")[0:1280, 0:947]


def second_face(width: int) -> np.ndarray:
    """Another person's face (img3), cut around the face and scaled to `width` px wide."""
    other = photo(FACES / "img3.jpg")
    crop = other[300:1000, 250:800]
    return cv2.resize(crop, (width, round(width * crop.shape[0] / crop.shape[1])))


def textured(kind: str, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    if kind == "noise":
        return rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    if kind == "checker":
        yy, xx = np.mgrid[0:height, 0:width]
        cells = ((yy // 24 + xx // 24) % 2 == 0)[:, :, None]
        return np.repeat(np.where(cells, 230, 30), 3, axis=2).astype(np.uint8)
    # "painting": blobs of colour at several scales, like a painted backdrop.
    out = np.zeros((height, width, 3), np.float32)
    for scale in (8, 32, 96):
        blobs = rng.normal(0, 1, (height // scale + 1, width // scale + 1, 3)).astype(np.float32)
        out += cv2.resize(blobs, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(128 + 40 * out, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", ["noise", "checker", "painting"])
def test_a_textured_background_is_never_a_second_face(pipeline, kind: str) -> None:
    face = selfie()
    canvas = textured(kind, 1280, 1800)
    canvas[:, 0:947] = face
    found = measures(pipeline, canvas)
    assert found["face_count"].value == 1 and found["face_count"].passed


@pytest.mark.parametrize(
    "name", ["img40.jpg", "img41.jpg", "img59.jpg"], ids=["camera", "blurred", "profile"]
)
def test_weak_background_detections_do_not_count(pipeline, name: str) -> None:
    """Each photo has a second detection of >= 35 % the primary's width (the old
    rule's MULTIPLE_FACES) that is blurred, masked by a camera or in profile."""
    image = photo(FACES / name)
    faces = pipeline.detector.detect(image)
    assert len(faces) >= 2 and faces[1].box[2] >= 0.35 * faces[0].box[2]
    assert not framing.is_second_person(faces[1], faces[0], quality.SELFIE)
    assert "MULTIPLE_FACES" not in codes(pipeline, image)


def test_two_people_are_multiple_faces(pipeline) -> None:
    image = photo(FACES / "couple.jpg")
    assert measures(pipeline, image)["face_count"].value == 2


@pytest.mark.parametrize(
    ("ratio", "counted"), [(0.25, False), (0.5, True), (0.75, True), (1.0, True)]
)
def test_a_pasted_second_person_counts_from_a_third_of_the_face(
    pipeline, ratio: float, counted: bool
) -> None:
    face = selfie()
    primary = pipeline.detector.detect(face)[0]
    canvas = np.full((1280, 1900, 3), 200, np.uint8)
    canvas[:, 0:947] = face
    pasted = second_face(round(ratio * primary.box[2] / 0.62))
    top = 200
    canvas[top : top + pasted.shape[0], 1000 : 1000 + pasted.shape[1]] = pasted
    faces = pipeline.detector.detect(canvas)
    assert len(faces) >= (2 if counted else 1)
    found = measures(pipeline, canvas)
    assert (found["face_count"].value == 2) is counted
    assert ("MULTIPLE_FACES" in codes(pipeline, canvas)) is counted


def test_the_whole_face_inside_the_frame_passes(pipeline) -> None:
    found = measures(pipeline, selfie())
    assert found["face_inside_frame"].passed and found["face_inside_frame"].value > 0


@pytest.mark.parametrize("edge", ["top", "bottom", "left", "right"])
def test_a_face_cut_at_an_edge_is_partially_outside(pipeline, edge: str) -> None:
    image = selfie()
    x, y, w, h = (int(v) for v in pipeline.detector.detect(image)[0].box)
    cut = {
        "top": image[y + int(0.35 * h) :, :],
        "bottom": image[: y + int(0.65 * h), :],
        "left": image[:, x + int(0.35 * w) :],
        "right": image[:, : x + int(0.65 * w)],
    }[edge]
    faces = pipeline.detector.detect(cut)
    assert faces, "the detector still finds the cut face"
    assert "FACE_PARTIALLY_OUTSIDE" in codes(pipeline, cut)


def _below_the_limit() -> np.ndarray:
    """img1 scaled to a short side of 320 px (under the selfie's 480)."""
    image = photo(FACES / "img1.jpg")
    return cv2.resize(image, (320, round(320 * image.shape[0] / image.shape[1])), cv2.INTER_AREA)


@pytest.mark.parametrize(
    ("factor", "interpolation"),
    [(2, cv2.INTER_CUBIC), (2, cv2.INTER_LINEAR), (3, cv2.INTER_CUBIC), (3, cv2.INTER_LANCZOS4)],
)
def test_an_upscaled_picture_is_refused(pipeline, factor: int, interpolation: int) -> None:
    small = _below_the_limit()
    up = cv2.resize(small, None, fx=factor, fy=factor, interpolation=interpolation)
    ok, data = cv2.imencode(".jpg", up, [cv2.IMWRITE_JPEG_QUALITY, 90])
    up = cv2.imdecode(data, cv2.IMREAD_COLOR)
    found = measures(pipeline, up)
    assert found["resolution_short_side_px"].passed  # the pixel count alone would pass
    effective = found["effective_resolution_px"]
    assert not effective.passed and effective.reason_code == "RESOLUTION_TOO_LOW"
    assert effective.value < 0.5 * min(up.shape[:2])


def test_a_genuine_picture_reads_most_of_its_resolution(pipeline) -> None:
    image = selfie()
    face = pipeline.detector.detect(image)[0]
    # The photo is a web image (already resized once): about 0.6 of its 947 px.
    effective = resolution.effective_short_side(image, face)
    assert effective > 0.55 * min(image.shape[:2]) > 1.3 * 0.8 * quality.SELFIE.min_short_side_px
    assert measures(pipeline, image)["effective_resolution_px"].passed


def _framed(pipeline: FacePipeline, k: float) -> tuple[np.ndarray, Face]:
    image = photo(FACES / "img1.jpg")
    face = pipeline.detector.detect(image)[0]
    x, y, w, h = face.box
    cx, cy = x + w / 2, y + h / 2
    framed = image[
        int(max(0, cy - k * h / 2)) : int(cy + k * h / 2),
        int(max(0, cx - k * w / 2)) : int(cx + k * w / 2),
    ]
    return framed, pipeline.detector.detect(framed)[0]


@pytest.mark.parametrize(
    ("name", "k", "too_close"), [("tight", 1.15, True), ("sdk", 1.8, False), ("loose", 3.0, False)]
)
def test_pad_framing(pipeline, name: str, k: float, too_close: bool) -> None:
    framed, face = _framed(pipeline, k)
    found = measures(pipeline, framed)
    assert (found["pad_frame_scale"].reason_code == "FACE_TOO_CLOSE") is too_close, (
        name,
        found["pad_frame_scale"].value,
    )
    assert found["pad_frame_scale"].value == pytest.approx(
        framing.pad_frame_scale(face, framed.shape[1], framed.shape[0])
    )
    if not too_close:
        assert pipeline.pad is not None
        crops = {s.scale: pad_crop(framed, face.box, s.scale, s.size) for s in pipeline.pad.specs}
        assert pipeline.pad.score(crops).live


def test_reference_images_are_not_judged_for_pad_framing(pipeline) -> None:
    framed, face = _framed(pipeline, 1.15)
    names = {m.name for m in quality.assess(framed, [face], quality.REFERENCE)}
    assert "pad_frame_scale" not in names and "face_inside_frame" in names


@pytest.mark.parametrize("name", ["img1.jpg", "img20.jpg", "img3.jpg"])
def test_roll_on_real_photos_follows_known_rotations(pipeline, name: str) -> None:
    """Known changes of a real photo: an in-plane rotation by 8 degrees adds 8 to
    roll, a mirror negates it (within the detector's landmark noise; YuNet is
    not mirror-equivariant and its nose point moves under rotation, which
    limits what real photos can show about yaw and pitch)."""
    image = photo(FACES / name)
    height, width = image.shape[:2]

    def read(img: np.ndarray) -> quality.Pose:
        return quality.estimate_pose(pipeline.detector.detect(img)[0].landmarks)

    base = read(image)
    assert read(cv2.flip(image, 1)).roll == pytest.approx(-base.roll, abs=3.0)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), -8, 1.0)
    rotated = read(cv2.warpAffine(image, matrix, (width, height)))
    assert rotated.roll - base.roll == pytest.approx(8, abs=3.0)
