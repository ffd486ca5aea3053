"""Portrait crops for the analyst console's review view.

A stored capture frame (JPEG, PNG or WebP) is decoded, the largest face is
found with the platform's pinned detector (YuNet, identity_ktp.portrait) and
cropped with a margin, then re-encoded as JPEG. A frame without a detected
face is answered as its central square (the analyst still sees the capture).
One detector, loaded on first use, one call at a time.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from identity_ktp.portrait import PortraitFinder, load_face_detector

MARGIN = 0.35  # of the face box, on each side
MAX_SIDE = 320  # the crop is scaled down to at most this many pixels a side
JPEG_QUALITY = 85

_lock = threading.Lock()
_finder: PortraitFinder | None = None


def _detector() -> PortraitFinder:
    global _finder
    if _finder is None:
        _finder = PortraitFinder(load_face_detector())
    return _finder


def crop(frame: bytes) -> bytes | None:
    """The face crop of an encoded frame as JPEG; None if it does not decode."""
    pixels = cv2.imdecode(np.frombuffer(frame, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        return None
    height, width = pixels.shape[:2]
    with _lock:
        faces = _detector().detect(pixels)
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
    return bytes(encoded) if ok else None
