"""Did anything change outside the face between two frames of one capture?

The flash frames of a capture are re-detected only in a region around the
baseline frame's face (`FaceDetector.detect_near`); a second person stepping
in elsewhere would not be seen there. So each flash frame is first compared
with the baseline on small grey thumbnails, outside that region: after
matching the overall brightness (the flash scales the light), the mean
absolute difference of every cell of `CELL` x `CELL` thumbnail pixels must
stay under `MAX_CELL_CHANGE` grey levels; otherwise the frame is detected
whole, as before. The screen's flash (a gain of up to ~15 % per channel)
leaves a few levels; a face or a moved camera changes tens.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMBNAIL_LONG_SIDE = 96
CELL = 8
MAX_CELL_CHANGE = 12.0


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of a width x height frame's thumbnail."""
    scale = THUMBNAIL_LONG_SIDE / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail(image: np.ndarray) -> np.ndarray:
    """The BGR frame as a grey float32 picture THUMBNAIL_LONG_SIDE pixels long."""
    height, width = image.shape[:2]
    small = cv2.resize(image, thumbnail_size(width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)


def _outside(
    shape: tuple[int, ...], region: tuple[int, int, int, int], width: int, height: int
) -> np.ndarray:
    """The pixels of a `shape` thumbnail of a width x height frame that lie
    outside `region` (x0, y0, x1, y1 in frame pixels), a pixel's margin off it."""
    rows, cols = shape[:2]
    sx, sy = cols / width, rows / height
    x0, y0, x1, y1 = region
    outside = np.ones((rows, cols), dtype=bool)
    outside[
        max(0, int(y0 * sy) - 1) : min(rows, int(np.ceil(y1 * sy)) + 1),
        max(0, int(x0 * sx) - 1) : min(cols, int(np.ceil(x1 * sx)) + 1),
    ] = False
    return outside


def _judged_cells(outside: np.ndarray) -> list[tuple[int, int, int]]:
    """(top, left, outside pixel count) of each cell with enough of the outside to judge."""
    rows, cols = outside.shape
    cells = []
    for top in range(0, rows, CELL):
        for left in range(0, cols, CELL):
            count = int(outside[top : top + CELL, left : left + CELL].sum())
            if count >= CELL * CELL // 4:
                cells.append((top, left, count))
    return cells


def watches_outside(region: tuple[int, int, int, int], width: int, height: int) -> bool:
    """Whether anything outside `region` is judged at all: when not (the region
    covers the frame, as in a selfie), `changed_outside` is False whatever the
    frames show, so neither thumbnail is needed."""
    cols, rows = thumbnail_size(width, height)
    return bool(_judged_cells(_outside((rows, cols), region, width, height)))


def changed_outside(
    before: np.ndarray,
    after: np.ndarray,
    region: tuple[int, int, int, int],
    width: int,
    height: int,
) -> bool:
    """Whether `after` differs from `before` (thumbnails of width x height
    frames) anywhere outside `region` (x0, y0, x1, y1 in frame pixels)."""
    if before.shape != after.shape:
        return True
    outside = _outside(before.shape, region, width, height)
    if not outside.any():
        return False
    gain = float(before[outside].mean()) / max(float(after[outside].mean()), 1e-3)
    difference = np.abs(before - after * gain)
    difference[~outside] = 0.0
    for top, left, count in _judged_cells(outside):
        cell = difference[top : top + CELL, left : left + CELL]
        if float(cell.sum()) / count > MAX_CELL_CHANGE:
            return True
    return False
