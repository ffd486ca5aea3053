"""AssessFace: decode each frame once, detect, measure, pick the best frame, cut its crops.

Every frame's header is checked (count, format, limits, and the request's
pixel budget, `DecodeBudget`) before anything is decoded; then the frames are
decoded one at a time, each within the per-frame pixel budget, and assessed,
keeping only the pixels the crops may be cut from. A bad frame still refuses
the whole request with INVALID_ARGUMENT. A frame without exactly one usable
face is not an error: it fails quality with FACE_NOT_FOUND or MULTIPLE_FACES.
The capture is judged on its best (or crop) frame, and fails MULTIPLE_FACES
too when any other frame shows a second person.

Detect once (issue 15): when the request names the crop frame (the unflashed
baseline of a flash capture), that frame is decoded and detected first, over
the whole frame; when it shows exactly one detection, every other frame (a
flash frame of the same face) is re-detected only in the region around the
baseline's face (`FaceDetector.detect_near`, a small input), unless
something changed outside that region (`identity_inference.scene`: a second
person may have stepped in) or the face is not conclusively there (gone, at
the region's edge, another size): then that frame is detected whole, as
every frame was before. A second
face inside the region is still found and counted; a face that left is not
found (FACE_LOST_BETWEEN_FRAMES in liveness) or is found cut at the frame's
edge (FACE_PARTIALLY_OUTSIDE).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

import numpy as np

from identity_capture.limits import MAX_FRAMES
from identity_inference import framing, images, quality, scene
from identity_inference.align import ALIGNMENT_ID, align_face
from identity_inference.detector import Face, FaceDetector, roi_box
from identity_inference.pad import CropSpec, pad_crop
from identity_runtime.errors import InvalidArgument, invalid_field

SELFIE, REFERENCE = "selfie", "reference"


@dataclass(frozen=True)
class DecodeBudget:
    """What one AssessFace request may cost in decoded pixels.

    A frame is decoded to at most `frame_pixels` (downscaled at decode time),
    so a request holds at most MAX_FRAMES x frame_pixels x 3 bytes of frames;
    frames declaring more than `request_pixels` in total are refused before
    any decoding (decoding them would take longer than a deadline); a PNG or
    WebP over `frame_pixels` is decoded at full size, briefly, by at most
    `full_size_decodes` threads of the process at once.
    """

    frame_pixels: int = 3_000_000
    request_pixels: int = 160_000_000
    full_size_decodes: int = 1
    gate: threading.Semaphore = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gate", threading.BoundedSemaphore(self.full_size_decodes))

    def check(self, headers: list[images.ImageHeader]) -> None:
        declared = sum(h.width * h.height for h in headers)
        if declared > self.request_pixels:
            raise InvalidArgument(
                f"frames: the frames declare {declared} pixels in total, more than the "
                f"{self.request_pixels} one request may decode; send smaller frames",
                "IMAGE_BUDGET_EXCEEDED",
                {
                    "field": "frames",
                    "declared_pixels": declared,
                    "max_request_pixels": self.request_pixels,
                },
            )


@dataclass(frozen=True)
class ColourSample:
    face_bgr: tuple[float, float, float]
    background_bgr: tuple[float, float, float]


@dataclass(frozen=True)
class FrameResult:
    index: int
    width: int
    height: int
    faces: list[Face]
    measures: list[quality.Measure]
    colour: ColourSample
    # False: not measured (another frame is the one judged), no verdict.
    measured: bool = True

    @property
    def passed(self) -> bool:
        return self.measured and all(m.passed for m in self.measures)


@dataclass(frozen=True)
class PadCropImage:
    scale: float
    image: np.ndarray


@dataclass(frozen=True)
class FaceCrops:
    aligned: np.ndarray
    alignment: str
    pad: list[PadCropImage]


@dataclass(frozen=True)
class Witness:
    """Another frame's face, aligned: the caller checks it is the judged face's person."""

    index: int
    aligned: np.ndarray


@dataclass(frozen=True)
class FaceAssessment:
    frames: list[FrameResult]
    best_index: int
    passed: bool
    # (code, message) of the best frame's failing measures.
    reasons: list[tuple[str, str]]
    crops: FaceCrops | None
    detector_model: str
    witness: Witness | None = None


def _reason_text(measure: quality.Measure) -> str:
    return f"{measure.name} = {measure.value:.3g}, accepted {measure.threshold}"


@dataclass(frozen=True)
class _Anchor:
    """The baseline frame's primary face and thumbnail, for its flash frames."""

    face: Face
    # None: the region around the face covers the frame (as in a selfie), so
    # nothing outside it is compared and no thumbnail is needed (scene.watches_outside).
    thumbnail: np.ndarray | None
    width: int
    height: int

    @classmethod
    def of(cls, face: Face, image: np.ndarray) -> _Anchor:
        height, width = image.shape[:2]
        watched = scene.watches_outside(roi_box(face.box, width, height), width, height)
        return cls(face, scene.thumbnail(image) if watched else None, width, height)


def _frame_rank(frame: FrameResult) -> tuple[int, int, float]:
    blur = next((m.value for m in frame.measures if m.name == "blur_laplacian_var"), 0.0)
    return (int(frame.passed), sum(m.passed for m in frame.measures), blur)


class FaceAssessor:
    def __init__(
        self,
        detector: FaceDetector,
        pad_specs: list[CropSpec],
        limits: images.ImageLimits,
        budget: DecodeBudget | None = None,
        detect_once: bool = True,
    ):
        self.detector = detector
        # Full detection on the crop frame only (False: every frame, the former
        # path, kept for the benchmark's side-by-side measurement).
        self.detect_once = detect_once
        self.pad_specs = pad_specs
        self.limits = limits
        self.budget = budget or DecodeBudget()
        self.profiles = {SELFIE: quality.SELFIE, REFERENCE: quality.REFERENCE}

    def check_frames(self, frames: list[bytes]) -> None:
        """Count, headers, limits and the request's pixel budget: no decoding."""
        if not 1 <= len(frames) <= MAX_FRAMES:
            raise invalid_field("frames", f"send 1 to {MAX_FRAMES} frames")
        headers = []
        for i, data in enumerate(frames):
            header = images.read_header(data, f"frames[{i}].data")
            images.check_limits(header, self.limits, f"frames[{i}].data")
            headers.append(header)
        self.budget.check(headers)

    def decode_frame(self, index: int, data: bytes) -> np.ndarray:
        return images.decode(
            data,
            self.limits,
            f"frames[{index}].data",
            max_pixels_out=self.budget.frame_pixels,
            gate=self.budget.gate,
        )

    def decode_frames(self, frames: list[bytes]) -> list[np.ndarray]:
        self.check_frames(frames)
        return [self.decode_frame(i, data) for i, data in enumerate(frames)]

    def find_faces(self, image: np.ndarray, anchor: _Anchor | None = None) -> list[Face]:
        """Every face of the frame: near the anchor's face when the frame is
        the anchor's scene with the face in place, else over the whole frame."""
        if anchor is None:
            return self.detector.detect(image)
        height, width = image.shape[:2]
        region = roi_box(anchor.face.box, width, height)
        if (width, height) != (anchor.width, anchor.height) or (
            anchor.thumbnail is not None
            and scene.changed_outside(
                anchor.thumbnail, scene.thumbnail(image), region, width, height
            )
        ):
            return self.detector.detect(image)
        near = self.detector.detect_near(image, anchor.face)
        return near if near is not None else self.detector.detect(image)

    def assess_frame(
        self,
        index: int,
        image: np.ndarray,
        profile: quality.QualityProfile,
        anchor: _Anchor | None = None,
        measured: bool = True,
    ) -> FrameResult:
        faces = self.find_faces(image, anchor)
        face_bgr, background_bgr = quality.colour_sample(image, faces[0] if faces else None)
        return FrameResult(
            index=index,
            width=image.shape[1],
            height=image.shape[0],
            faces=faces,
            measures=quality.assess(image, faces, profile) if measured else [],
            colour=ColourSample(face_bgr, background_bgr),
            measured=measured,
        )

    def crops(self, image: np.ndarray, face: Face) -> FaceCrops:
        return FaceCrops(
            aligned=align_face(image, face.landmarks),
            alignment=ALIGNMENT_ID,
            pad=[
                PadCropImage(spec.scale, pad_crop(image, face.box, spec.scale, spec.size))
                for spec in self.pad_specs
            ],
        )

    def assess(
        self,
        frames: list[bytes],
        kind: str = SELFIE,
        include_crops: bool = False,
        crop_frame_index: int | None = None,
        measure_crop_frame_only: bool = False,
    ) -> FaceAssessment:
        self.check_frames(frames)
        if measure_crop_frame_only and crop_frame_index is None:
            raise invalid_field("measure_crop_frame_only", "needs crop_frame_index")
        profile = self.profiles[kind]
        # One decoded frame at a time: only the pixels the crops may be cut
        # from are kept (the best frame so far, the requested crop frame).
        # The crop frame goes first: its face anchors the other frames'
        # search, and decides whether they are measured.
        order = list(range(len(frames)))
        first = crop_frame_index if self.detect_once or measure_crop_frame_only else None
        if first is not None and 0 <= first < len(frames):
            order = [first, *(i for i in order if i != first)]
        measure_all = not (measure_crop_frame_only and first in order)
        by_index: dict[int, FrameResult] = {}
        kept: dict[int, np.ndarray] = {}
        leader: FrameResult | None = None
        anchor: _Anchor | None = None
        # One face of the frames other than the crop frame (showing one face
        # each), chosen at random among them as they come (reservoir sampling:
        # only the chosen one is aligned and kept). A capture that swaps faces
        # on only some frames cannot know which one is compared.
        witness: Witness | None = None
        candidates = 0
        for index in order:
            image = self.decode_frame(index, frames[index])
            measured = measure_all or index == first
            result = self.assess_frame(index, image, profile, anchor, measured)
            by_index[index] = result
            if index == first:
                # One face only: with any other detection (a second person, a
                # poster, a phantom) the flash frames are detected whole, as before.
                if len(result.faces) == 1 and self.detect_once:
                    anchor = _Anchor.of(result.faces[0], image)
                # No face on the crop frame: the best of the others is judged.
                measure_all = measure_all or not result.faces
            if not (include_crops and result.faces):
                continue
            if crop_frame_index is not None and index != crop_frame_index:
                if len(result.faces) == 1:
                    candidates += 1
                    if secrets.randbelow(candidates) == 0:
                        witness = Witness(index, align_face(image, result.faces[0].landmarks))
            if index == crop_frame_index:
                kept[index] = image
            elif leader is None or _frame_rank(result) > _frame_rank(leader):
                if leader is not None and leader.index != crop_frame_index:
                    kept.pop(leader.index, None)
                kept[index] = image
                leader = result
        results = [by_index[i] for i in range(len(frames))]
        with_face = [r for r in results if r.faces]
        if not with_face:
            return FaceAssessment(
                frames=results,
                best_index=-1,
                passed=False,
                reasons=[("FACE_NOT_FOUND", "no frame shows a face")],
                crops=None,
                detector_model=self.detector.model_id,
            )
        if crop_frame_index is not None and not 0 <= crop_frame_index < len(results):
            raise invalid_field("crop_frame_index", "is not the index of a frame")
        chosen = results[crop_frame_index] if crop_frame_index is not None else None
        best = chosen if chosen is not None and chosen.faces else max(with_face, key=_frame_rank)
        reasons = [(m.reason_code, _reason_text(m)) for m in best.measures if not m.passed]
        # One person for the whole capture: a second person in any other
        # frame (someone stepping in during the flash sequence) fails it too,
        # measured or not (the count reads the detections only).
        crowded = [
            r.index
            for r in results
            if r.index != best.index and framing.count_faces(r.faces, profile) > 1
        ]
        if crowded and not any(code == "MULTIPLE_FACES" for code, _ in reasons):
            listed = ", ".join(str(i) for i in crowded)
            reasons.append(("MULTIPLE_FACES", f"another person in frame {listed} of the capture"))
        crops = self.crops(kept[best.index], best.faces[0]) if include_crops else None
        judged_crop_frame = best.index == crop_frame_index and crops is not None
        return FaceAssessment(
            frames=results,
            best_index=best.index,
            passed=best.passed and not crowded,
            reasons=reasons,
            crops=crops,
            detector_model=self.detector.model_id,
            witness=witness if judged_crop_frame else None,
        )
