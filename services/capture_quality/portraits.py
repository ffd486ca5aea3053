"""Portrait crops for people to look at (the analyst console's review view,
through CropPortrait): the image is decoded within the service's limits, the
largest face is found with the service's own detector (the one model owner:
kyc-tier loads no model) and cut with a margin, scaled down and re-encoded
as JPEG. An image without a detected face is answered as its central square
(the analyst still sees the capture)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2

from services.capture_quality.faces import FaceAssessor

MARGIN = 0.35  # of the face box, on each side
MAX_SIDE = 320  # the crop is scaled down to at most this many pixels a side
JPEG_QUALITY = 85


@dataclass(frozen=True)
class PortraitCrop:
    jpeg: bytes
    face_found: bool
    detector_model: str


def crop(assessor: FaceAssessor, data: bytes) -> PortraitCrop:
    """The face crop of an encoded image (INVALID_ARGUMENT when it does not decode)."""
    assessor.check_frames([data])
    pixels = assessor.decode_frame(0, data)
    height, width = pixels.shape[:2]
    faces = assessor.detector.detect(pixels)
    if faces:
        x, y, w, h = faces[0].box
        pad_w, pad_h = w * MARGIN, h * MARGIN
        left, top = max(0, int(x - pad_w)), max(0, int(y - pad_h))
        right, bottom = min(width, int(x + w + pad_w)), min(height, int(y + h + pad_h))
    else:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        right, bottom = left + side, top + side
    face = pixels[top:bottom, left:right]
    scale = MAX_SIDE / max(face.shape[:2])
    if scale < 1:
        face = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV encodes any 8-bit BGR image
        raise RuntimeError("JPEG encoding failed")
    return PortraitCrop(bytes(encoded), bool(faces), assessor.detector.model_id)
