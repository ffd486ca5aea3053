"""Screen re-capture cues: is this a photo of a screen showing a KTP?

Two measures, both computed on the card region of the input photo (before
rectification, so the camera's JPEG 8 x 8 grid stays on the spectrum axes):

* moire / pixel grid: a display's sub-pixel grid photographed by a camera
  aliases into strong, narrow, periodic peaks in the 2-D spectrum, away from
  the axes (text lines, card edges and JPEG blocks put their energy on the
  axes, which are excluded). The measure is the highest peak's prominence
  over the median of its frequency ring, in natural-log units.
* colour banding: a screen with a low bit depth shows smooth gradients as
  steps; the measure is the fraction of missing grey levels inside smooth
  areas of the card. Camera noise fills the gaps, so it is a weak cue.

Neither is proof: a printed card photographed with a sharp camera can show
a halftone peak, and a good screen photographed out of focus shows none.
They are reported as a non-decisive signal with a score.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Prominence (log units) from which the moire cue starts to count and where
# it saturates; calibrated on the dev captures (genuine: below 2) and
# simulated screen re-captures (above 4), see docs/ktp.md.
MOIRE_LOW = 2.5
MOIRE_HIGH = 4.5
WINDOW = 512


@dataclass(frozen=True)
class RecaptureCues:
    moire_prominence: float
    banding_ratio: float
    score: float


def _card_window(image: np.ndarray, corners: tuple[tuple[float, float], ...]) -> np.ndarray:
    """An axis-aligned window inside the card outline, at most WINDOW square."""
    (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = corners
    left, right = max(tlx, blx), min(trx, brx)
    top, bottom = max(tly, try_), min(bly, bry)
    # Stay off the card edges.
    inset_x, inset_y = 0.05 * (right - left), 0.05 * (bottom - top)
    left, right, top, bottom = (
        int(left + inset_x),
        int(right - inset_x),
        int(top + inset_y),
        int(bottom - inset_y),
    )
    region = image[max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)]
    if region.shape[0] < 64 or region.shape[1] < 64:
        return image
    height, width = region.shape[:2]
    size_y, size_x = min(WINDOW, height), min(WINDOW, width)
    y0, x0 = (height - size_y) // 2, (width - size_x) // 2
    return region[y0 : y0 + size_y, x0 : x0 + size_x]


def moire_prominence(gray: np.ndarray) -> float:
    """Highest off-axis spectral peak above its ring median (natural log)."""
    signal = gray.astype(np.float32)
    signal -= cv2.GaussianBlur(signal, (0, 0), 3)
    height, width = signal.shape
    window = np.outer(np.hanning(height), np.hanning(width)).astype(np.float32)
    spectrum = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(signal * window))))
    fy, fx = np.meshgrid(
        np.arange(height) - height // 2, np.arange(width) - width // 2, indexing="ij"
    )
    radius = np.sqrt((fx / (width / 2)) ** 2 + (fy / (height / 2)) ** 2)
    valid = (
        (np.abs(fx) > max(4, width // 64))
        & (np.abs(fy) > max(4, height // 64))
        & (radius > 0.08)
        & (radius < 1.0)
    )
    rings = np.minimum((radius * 64).astype(int), 64)
    prominence = np.zeros_like(spectrum)
    for ring in np.unique(rings[valid]):
        members = valid & (rings == ring)
        prominence[members] = spectrum[members] - np.median(spectrum[members])
    return float(prominence.max()) if valid.any() else 0.0


def banding_ratio(gray: np.ndarray) -> float:
    """Fraction of missing grey levels within the smooth areas' range."""
    gradient = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((5, 5), np.uint8))
    smooth = gray[gradient <= 6]
    if smooth.size < 2000:
        return 0.0
    low, high = np.percentile(smooth, [5, 95]).astype(int)
    if high - low < 12:
        return 0.0
    counts = np.bincount(smooth, minlength=256)[low : high + 1]
    return float(np.mean(counts < 0.1 * counts.mean()))


def recapture_cues(image: np.ndarray, corners: tuple[tuple[float, float], ...]) -> RecaptureCues:
    gray = cv2.cvtColor(_card_window(image, corners), cv2.COLOR_BGR2GRAY)
    moire = moire_prominence(gray)
    banding = banding_ratio(gray)
    moire_score = float(np.clip((moire - MOIRE_LOW) / (MOIRE_HIGH - MOIRE_LOW), 0.0, 1.0))
    # Banding alone is weak evidence: it can add at most 0.4.
    banding_score = float(np.clip((banding - 0.3) / 0.5, 0.0, 1.0)) * 0.4
    return RecaptureCues(moire, banding, max(moire_score, banding_score))


# Colourfulness (Lab chroma, 75th percentile) of the portrait zone below
# which the card is a monochrome copy. Simulated genuine captures: >= 10.8
# (3 stops under-exposed), 14.1 (glare over the portrait), 21-26 otherwise;
# simulated photocopies: 0.0 (docs/ktp.md).
PHOTOCOPY_CHROMA_MAX = 4.0


def portrait_chroma(card: np.ndarray, zone: tuple[float, float, float, float]) -> float:
    """Colourfulness of the rectified card's portrait zone (x0, y0, x1, y1
    fractions): a KTP portrait is printed in colour; a photocopy (or a
    grey-level print) of the card has none."""
    height, width = card.shape[:2]
    x0, y0, x1, y1 = zone
    region = card[int(y0 * height) : int(y1 * height), int(x0 * width) : int(x1 * width)]
    if region.size == 0:
        return 0.0
    lab = cv2.cvtColor(region, cv2.COLOR_BGR2LAB).astype(np.float32)
    chroma = np.hypot(lab[:, :, 1] - 128.0, lab[:, :, 2] - 128.0)
    return float(np.percentile(chroma, 75))
