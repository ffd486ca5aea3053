"""True-resolution estimate by a re-sampling test.

A frame upscaled from a smaller picture has no detail above its source's
Nyquist frequency: shrinking it to the source's size and enlarging it again
loses almost nothing. For scales s on a grid, the region around the face (or
the whole frame without one) is shrunk to s x its size (area averaging),
enlarged back (bicubic), and the RMS of what was lost, r(s), is compared with
what shrinking to a quarter loses, r(0.25). The detail scale s* is where this
ratio first reaches `DETAIL_RATIO` coming down from full size (interpolated
between grid points); the effective short side is s* x the frame's.

Measured (docs/inference.md, "True resolution"): on the 61 test photos the
estimate reads ~0.85 of the nominal short side (JPEG and web resizing already
removed their finest detail); photos upscaled x2 and x3 read within ~10 %
of their source's size. The gate therefore accepts an effective short side
of `EFFECTIVE_FRACTION` (0.75) x the profile's minimum: an upscale of a
320x240 picture reads ~330 px and is refused, while a genuine 480 px frame
reads ~400 px and passes. Upscales from just under the limit (400 px and
more) are not separable from soft genuine frames this way.
"""

from __future__ import annotations

import cv2
import numpy as np

from identity_inference.detector import Face

GRID = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.33)
REFERENCE_SCALE = 0.25
DETAIL_RATIO = 0.33
EFFECTIVE_FRACTION = 0.75
# Regions larger than this (long side) are shrunk first: the test looks at
# relative frequencies, and the cost stays bounded.
_MAX_REGION = 1024


def _region(image: np.ndarray, face: Face | None) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    if face is None:
        return grey
    x, y, w, h = face.box
    height, width = grey.shape[:2]
    x0, y0 = int(max(0, x - 0.25 * w)), int(max(0, y - 0.25 * h))
    x1, y1 = int(min(width, x + 1.25 * w)), int(min(height, y + 1.25 * h))
    region = grey[y0:y1, x0:x1]
    return region if min(region.shape[:2]) >= 32 else grey


def _loss(region: np.ndarray, scale: float) -> float:
    height, width = region.shape[:2]
    small = cv2.resize(
        region,
        (max(8, round(width * scale)), max(8, round(height * scale))),
        interpolation=cv2.INTER_AREA,
    )
    back = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return float(np.sqrt(np.mean((region - back) ** 2)))


def detail_scale(image: np.ndarray, face: Face | None = None) -> float:
    """s* in (0, 1]: the share of the frame's resolution that carries detail."""
    region = _region(image, face).astype(np.float32)
    long_side = max(region.shape[:2])
    shrink = 1.0
    if long_side > _MAX_REGION:
        # Beyond ~1000 px the question (is there more than 480 px of detail?) is
        # answered at this size: the result is then a lower bound.
        shrink = _MAX_REGION / long_side
        region = np.asarray(
            cv2.resize(region, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        )
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
