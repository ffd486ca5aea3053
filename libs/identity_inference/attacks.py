"""Simulated presentation attacks made from bona-fide photos, for PAD evaluation.

No offline spoof dataset exists here, so each attack type re-renders a real
photo through a model of the attack's optical path, then re-frames it the
way a camera would see it (the attack medium fills the frame with a rim of
surroundings). What each simulates:

- `print_halftone`: a colour laser/inkjet print: CMYK-like halftone dots
  (rotated screens, ~6 px period), paper white lifted, ink gamut compressed,
  then re-photographed (slight defocus, sensor noise, JPEG).
- `print_paper`: a photo print on matte paper: paper fibre texture
  (multiplicative low-frequency noise), reduced contrast and a warm cast,
  a slight curl (perspective), re-photographed.
- `screen_moire`: a replay on a phone/laptop screen: the picture resampled
  onto an RGB sub-pixel grid and re-sampled by the camera at a slightly
  different pitch and angle, which produces moire fringes.
- `screen_glare`: a replay with the screen's gamma (2.2 display curve seen
  by a camera with its own), raised black level and a specular glare patch.

What simulations can and cannot show: they test the model's response to
the artefacts we render (halftone, moire, gamma, glare, texture), which are
the cues PAD models learn; they do not reproduce real devices, real paper,
masks or replays from high-end displays, and a model can pass every
simulation and still fail a real attack (or the reverse). The figures are a
regression check and a floor, not an APCER to quote to a certifier.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

ATTACK_TYPES = ("print_halftone", "print_paper", "screen_moire", "screen_glare")


def _rephotograph(image: np.ndarray, rng: np.random.Generator, rim: float = 0.12) -> np.ndarray:
    """The medium seen by a camera: a dark/grey rim around it, defocus, noise, JPEG."""
    height, width = image.shape[:2]
    pad_y, pad_x = int(rim * height), int(rim * width)
    surround = rng.integers(30, 90)
    framed = cv2.copyMakeBorder(
        image, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=(int(surround),) * 3
    )
    framed = cv2.GaussianBlur(framed, (0, 0), 0.8)
    noisy = framed.astype(np.float32) + rng.normal(0, 3.0, framed.shape)
    out = np.clip(noisy, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR))


def print_halftone(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    ink = 1.0 - image.astype(np.float32) / 255.0  # C, M, Y-like per channel (B, G, R)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = 6.0
    out = np.empty_like(ink)
    for channel, angle in enumerate((15.0, 75.0, 0.0)):
        a = np.radians(angle)
        u = (xx * np.cos(a) + yy * np.sin(a)) / period
        v = (-xx * np.sin(a) + yy * np.cos(a)) / period
        # Distance to the dot centre in [0, 0.71]; a dot covers its ink share.
        dist = np.hypot(u - np.round(u), v - np.round(v))
        radius = np.sqrt(np.clip(ink[:, :, channel], 0, 1) / np.pi)
        out[:, :, channel] = (dist < radius).astype(np.float32)
    printed = (1.0 - 0.9 * out) * 245.0 + 5.0
    blurred = np.asarray(cv2.GaussianBlur(printed, (0, 0), 1.0))
    return _rephotograph(np.clip(blurred, 0, 255).astype(np.uint8), rng)


def print_paper(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    noise = rng.normal(0, 1, (max(2, height // 4), max(2, width // 4))).astype(np.float32)
    fibre = np.asarray(cv2.resize(cv2.GaussianBlur(noise, (0, 0), 1.5), (width, height)))
    texture = 1.0 + 0.06 * fibre / max(float(np.abs(fibre).max()), 1e-6)
    flat = image.astype(np.float32) * 0.8 + 30.0  # lower contrast, paper-white blacks
    warm = flat * np.array([0.92, 0.98, 1.04], dtype=np.float32)
    printed = np.clip(warm * texture[:, :, None], 0, 255).astype(np.uint8)
    shift = 0.04 * width
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    dst = np.array([[shift, 0], [width - shift, 0], [width, height], [0, height]], dtype=np.float32)
    curled = cv2.warpPerspective(
        printed, cv2.getPerspectiveTransform(src, dst), (width, height), borderValue=(60, 60, 60)
    )
    return _rephotograph(curled, rng)


def screen_moire(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    pitch = 3  # one screen pixel = 3 sub-pixel columns
    screen = cv2.resize(image, (width // pitch, height // pitch), interpolation=cv2.INTER_AREA)
    big = cv2.resize(
        screen,
        (screen.shape[1] * pitch, screen.shape[0] * pitch),
        interpolation=cv2.INTER_NEAREST,
    )
    mask = np.zeros_like(big, dtype=np.float32)
    for channel, column in ((2, 0), (1, 1), (0, 2)):  # R, G, B stripes
        mask[:, column::pitch, channel] = 1.0
    mask[::pitch, :, :] *= 0.5  # the dark row gaps
    lit = big.astype(np.float32) * mask * 2.4
    angle = float(rng.uniform(2.0, 5.0))
    scale = float(rng.uniform(0.93, 0.97))  # the camera's pitch differs from the screen's
    centre = (lit.shape[1] / 2, lit.shape[0] / 2)
    rotation = cv2.getRotationMatrix2D(centre, angle, scale)
    sampled = cv2.warpAffine(
        np.clip(lit, 0, 255).astype(np.uint8),
        rotation,
        (lit.shape[1], lit.shape[0]),
        flags=cv2.INTER_LINEAR,
        borderValue=(20, 20, 20),
    )
    return _rephotograph(cv2.resize(sampled, (width, height), interpolation=cv2.INTER_AREA), rng)


def screen_glare(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    linear = (image.astype(np.float32) / 255.0) ** 2.2
    shown = 0.06 + 0.94 * linear ** (1 / 1.8)  # raised black level, camera curve
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.1, 0.5) * height
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    sigma = 0.15 * min(width, height)
    glare = 0.55 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    lit = np.clip((shown + glare[:, :, None]) * 255.0, 0, 255).astype(np.uint8)
    return _rephotograph(lit, rng)


SIMULATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "print_halftone": print_halftone,
    "print_paper": print_paper,
    "screen_moire": screen_moire,
    "screen_glare": screen_glare,
}


def simulate(image: np.ndarray, attack: str, seed: int = 0) -> np.ndarray:
    """The photo as `attack` presents it to a camera (deterministic per seed)."""
    return SIMULATIONS[attack](image, np.random.default_rng(seed))
