"""The card's answer to the KTP flash challenge: the card region's colour per frame.

While the SDK flashes the challenge's colours on the phone's screen, the light
falls on whatever the camera sees. A physical card (laminate over printed
paper) reflects it diffusely: its chromaticity shifts towards each colour in
turn, as a face does. A screen showing a card emits its own light and
reflects only a few per cent of the phone's (glass and anti-glare coatings),
so its colour barely moves; a video replayed from another capture moves in
another order. Liveness judges the sequence (services/liveness/flash.py);
this module only measures.

The card's outline is found once, on the unflashed baseline frame; flash
frames are taken within a second or two of it, so the same outline, inset
by a margin for hand shake, is sampled on every frame. When no card was
found, the centre of the frame (where the SDK's card guide is) is sampled.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

Bgr = tuple[float, float, float]
Corners = tuple[tuple[float, float], ...]

# Share of the outline kept around its centre: a hand moving a few per cent
# of the card's width between frames stays inside the card.
INSET = 0.8
# The card guide of the SDK: the centre of the frame when no card was found.
GUIDE = 0.5
# Width a flash frame is kept at: a mean colour needs no detail.
THUMBNAIL_WIDTH = 320


def thumbnail(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    if width <= THUMBNAIL_WIDTH:
        return frame
    size = (THUMBNAIL_WIDTH, max(1, round(height * THUMBNAIL_WIDTH / width)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _region(corners: Corners, scale: tuple[float, float], shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    if len(corners) == 4:
        points = np.array(corners, dtype=np.float64) * np.array(scale)
    else:
        half_w, half_h = GUIDE * width / 2, GUIDE * height / 2
        cx, cy = width / 2, height / 2
        points = np.array(
            [
                (cx - half_w, cy - half_h),
                (cx + half_w, cy - half_h),
                (cx + half_w, cy + half_h),
                (cx - half_w, cy + half_h),
            ]
        )
    centre = points.mean(axis=0)
    inset = centre + INSET * (points - centre)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(inset).astype(np.int32)], 255)
    return mask


def card_colour(
    frame: np.ndarray, corners: Corners, reference_shape: tuple[int, int]
) -> tuple[Bgr, Bgr]:
    """Mean BGR inside the card outline (found on a frame of `reference_shape`,
    height x width) and outside it, on `frame`."""
    height, width = frame.shape[:2]
    scale = (width / max(reference_shape[1], 1), height / max(reference_shape[0], 1))
    mask = _region(corners, scale, (height, width))
    inside = cv2.mean(frame, mask=mask)[:3]
    if cv2.countNonZero(mask) == height * width:
        outside = inside
    else:
        outside = cv2.mean(frame, mask=cv2.bitwise_not(mask))[:3]
    return (
        (float(inside[0]), float(inside[1]), float(inside[2])),
        (float(outside[0]), float(outside[1]), float(outside[2])),
    )


# Mean chromaticity distance of the flash frames from their mean below which
# a card did not answer the flash (liveness's default for cards, and the
# print/screen line here). Simulated (docs/ktp.md): a card lit 15 % by the
# flash answers about 0.043, so one lit 3.5 % still passes; a screen
# reflecting 4 % of that flash answers 0.001-0.0035, one reflecting 11 %
# would pass. Faces keep liveness's lower default (skin answers less).
MIN_RESPONSE = 0.01


def flash_response(colours: Sequence[Bgr]) -> float:
    """How far the card's chromaticity (b, g, r) / (b + g + r) moves between
    flash frames: the mean distance from the frames' mean."""
    bgr = np.array(colours, dtype=np.float64)
    if len(bgr) < 2:
        return 0.0
    chroma = bgr / np.maximum(bgr.sum(axis=1, keepdims=True), 1e-6)
    return float(np.linalg.norm(chroma - chroma.mean(axis=0), axis=1).mean())


def reflects_flash(colours: Sequence[Bgr]) -> bool:
    return flash_response(colours) >= MIN_RESPONSE
