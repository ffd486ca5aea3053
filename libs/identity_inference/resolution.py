"""True-resolution estimate by a re-sampling test.

A frame upscaled from a smaller picture has no detail above its source's
Nyquist frequency: shrinking it to the source's size and enlarging it again
loses almost nothing. For scales s on a grid, the region around the face (or
the whole frame without one) is shrunk to s x its size (area averaging),
enlarged back (bicubic), and the RMS of what was lost, r(s), is compared with
what shrinking to a tenth loses, r(0.1). The detail scale s* is where this
ratio first reaches `DETAIL_RATIO` (0.2) coming down from full size
(interpolated between grid points); the effective short side is s* x the
frame's. A region over 1024 px is judged on its central 1024 px.

Measured (docs/inference.md, "True resolution"; the 47 test photos with a
short side >= 480, and each of the 61 photos scaled to a 320 px short side
then upscaled x2 (bicubic, bilinear) and x3 (bicubic, Lanczos), JPEG q90):
genuine photos read a median 653 px, upscales a median 304 px (at most 384).
The gate accepts an effective short side of `EFFECTIVE_FRACTION` (0.8) x
the profile's minimum, 384 px for a selfie: 3 of 47 genuine photos (web
images, themselves resized) and 1 of 244 upscales fall on the wrong side.
Upscales from just under the limit (400 px and more) are not separable from
soft genuine frames this way.
"""

from __future__ import annotations

import cv2
import numpy as np

from identity_inference.detector import Face

GRID = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.33, 0.27, 0.22)
REFERENCE_SCALE = 0.1
DETAIL_RATIO = 0.2
EFFECTIVE_FRACTION = 0.8
# Regions larger than this are judged on their central part (bounded cost).
_MAX_REGION = 1024


def _region(image: np.ndarray, face: Face | None) -> np.ndarray:
    """The grey region judged: 1.5 x the face box around it (the whole frame
    without a face, or when that is under 32 px), at most its central 1024 px.
    Cut before the grey conversion and the float copy (both per pixel: the
    same values, on fewer pixels)."""
    height, width = image.shape[:2]
    region = image
    if face is not None:
        x, y, w, h = face.box
        x0, y0 = int(max(0, x - 0.25 * w)), int(max(0, y - 0.25 * h))
        x1, y1 = int(min(width, x + 1.25 * w)), int(min(height, y + 1.25 * h))
        if min(y1 - y0, x1 - x0) >= 32:
            region = image[y0:y1, x0:x1]
    # A large region is judged on its central part at full resolution (bounded
    # cost; shrinking it would remove the very detail being looked for).
    rows, cols = region.shape[:2]
    if max(rows, cols) > _MAX_REGION:
        top, left = max(0, (rows - _MAX_REGION) // 2), max(0, (cols - _MAX_REGION) // 2)
        region = region[top : top + _MAX_REGION, left : left + _MAX_REGION]
    grey = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY) if region.ndim == 3 else region
    return grey.astype(np.float32)


def _loss(region: np.ndarray, scale: float) -> float:
    height, width = region.shape[:2]
    small = cv2.resize(
        region,
        (max(8, round(width * scale)), max(8, round(height * scale))),
        interpolation=cv2.INTER_AREA,
    )
    back = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    # The RMS of what was lost, summed in float64 by OpenCV without numpy's
    # temporaries (it differed from np.mean's float32 sum by < 1e-6 relative).
    return cv2.norm(region, back, cv2.NORM_L2) / float(np.sqrt(region.size))


def detail_scale(image: np.ndarray, face: Face | None = None) -> float:
    """s* in (0, 1]: the share of the frame's resolution that carries detail."""
    region = _region(image, face)
    shrink = 1.0
    reference = _loss(region, REFERENCE_SCALE)
    if reference <= 1e-6:
        return GRID[-1] * shrink
    previous_s, previous_ratio = GRID[0], 0.0
    for scale in GRID[1:]:
        ratio = _loss(region, scale) / reference
        if ratio >= DETAIL_RATIO:
            # Linear interpolation between the last scale below and this one.
            t = (DETAIL_RATIO - previous_ratio) / max(ratio - previous_ratio, 1e-9)
            return (previous_s + t * (scale - previous_s)) * shrink
        previous_s, previous_ratio = scale, ratio
    return GRID[-1] * shrink


def effective_short_side(image: np.ndarray, face: Face | None = None) -> float:
    """The short side the frame's detail corresponds to, in pixels."""
    return detail_scale(image, face) * float(min(image.shape[:2]))
