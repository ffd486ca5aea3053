"""The KTP robustness sweep: degraded captures rendered from the repository's
own cards (tests/data/ktp) with fixed seeds, run through the KTP pipeline,
scored against ground_truth.txt.

Every case is a pure function of its name and seed, so a table produced on
one machine can be reproduced on another. `tools/bench/ktp_harness.py` runs
the full sweep and writes the table; the test suite runs a small subset.

Degradations: perspective (camera tilt), in-plane rotation, card width,
Gaussian blur, motion blur, blur masked by noise, JPEG quality, low light and
over-exposure, specular glare (large, over text or the portrait), cluttered
backgrounds (wood grain, white paper touching the card, random clutter),
out-of-frame cuts on each side, and single-digit highlight probes: a small
specular highlight over one NIK digit (two positions per digit, every digit,
both cards).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from identity_ktp import fields as f
from identity_ktp.card import CARD_HEIGHT, CARD_WIDTH, find_card
from tests.support.ktp import DEV_NIK, ground_truth, ktp_path

# The 17 fields of the card's front (the issue place and date are extra).
SCORED_FIELDS = tuple(name for name in f.FIELD_NAMES if name not in (f.ISSUE_PLACE, f.ISSUE_DATE))
CANVAS = (1600, 1200)  # width, height of rendered scenes
TABLE = (60, 70, 80)


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    card: str  # "flat" or "captured"
    # Called with no argument: `...` for the lambdas that bind a loop's values as
    # defaults, whose type mypy cannot infer against a no-argument Callable.
    render: Callable[..., tuple[np.ndarray, np.ndarray | None]]
    # What a correct pipeline should do: "read" (a genuine, readable capture
    # or a retake), "outside" (the card is cut by the frame).
    expect: str = "read"


@dataclass
class Outcome:
    name: str
    group: str
    card: str
    card_found: bool
    finder_ok: bool | None
    reasons: list[str]
    gates_failed: list[str]
    fields_correct: int
    nik_exact: bool
    nik_read: bool
    passed: bool
    nik_stored: bool
    wrong_nik_passed: bool
    wrong_nik_stored: bool
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def perfect(self) -> bool:
        return self.fields_correct == len(SCORED_FIELDS) and self.nik_exact


# --------------------------------------------------------------------------- geometry


def _decoded(image: np.ndarray | None, what: str) -> np.ndarray:
    """opencv's result, which is None for what it cannot decode."""
    assert image is not None, what
    return image


def _flat() -> np.ndarray:
    return _decoded(cv2.imread(str(ktp_path("ktp_flat.png"))), "ktp_flat.png")


def _captured() -> np.ndarray:
    return _decoded(cv2.imread(str(ktp_path("ktp_captured.jpg"))), "ktp_captured.jpg")


_CAPTURED_CORNERS: np.ndarray | None = None


def captured_corners() -> np.ndarray:
    """The card's corners in ktp_captured.jpg (found once on the clean photo)."""
    global _CAPTURED_CORNERS
    if _CAPTURED_CORNERS is None:
        location = find_card(_captured())
        assert location is not None, "the clean captured card must be found"
        _CAPTURED_CORNERS = np.array(location.corners, np.float32)
    return _CAPTURED_CORNERS


def _card_rect() -> np.ndarray:
    return np.array(
        [[0, 0], [CARD_WIDTH - 1, 0], [CARD_WIDTH - 1, CARD_HEIGHT - 1], [0, CARD_HEIGHT - 1]],
        np.float32,
    )


def project(
    width: float,
    *,
    tilt: float = 0.0,
    roll: float = 0.0,
    centre: tuple[float, float] | None = None,
    canvas: tuple[int, int] = CANVAS,
) -> np.ndarray:
    """Corners of a card `width` px wide seen by a pinhole camera: `tilt`
    degrees about the card's horizontal axis, `roll` degrees in the image
    plane, centred at `centre`."""
    cw, ch = canvas
    cx, cy = centre or (cw / 2, ch / 2)
    half_w, half_h = width / 2, width / 2 * CARD_HEIGHT / CARD_WIDTH
    focal = 1.1 * cw
    points = np.array(
        [[-half_w, -half_h, 0], [half_w, -half_h, 0], [half_w, half_h, 0], [-half_w, half_h, 0]],
        np.float64,
    )
    t = math.radians(tilt)
    rx = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    r = math.radians(roll)
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rotated = points @ rx.T @ rz.T
    depth = focal + rotated[:, 2]
    xy = rotated[:, :2] * (focal / depth)[:, None]
    return (xy + np.array([cx, cy])).astype(np.float32)


def background(kind: str, seed: int, canvas: tuple[int, int] = CANVAS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cw, ch = canvas
    if kind == "table":
        image = np.full((ch, cw, 3), TABLE, np.float32)
        image += rng.normal(0, 2.0, image.shape)
    elif kind == "wood":
        y, x = np.mgrid[0:ch, 0:cw].astype(np.float32)
        warp = 25 * np.sin(y / 90.0 + rng.uniform(0, 6)) + rng.normal(0, 1, (ch, 1)) * 3
        grain = np.sin((x + warp) / rng.uniform(5, 9)) * 0.5 + 0.5
        fine = cv2.GaussianBlur(rng.normal(0, 1, (ch, cw)).astype(np.float32), (0, 0), 1.2)
        tone = 0.55 + 0.3 * grain + 0.08 * fine
        base = np.array([40, 90, 150], np.float32)  # BGR brown
        image = tone[:, :, None] * base[None, None, :] * 1.3
    elif kind == "wood_fine":
        # Fine, high-contrast grain: edges everywhere, as on a real table top.
        y, x = np.mgrid[0:ch, 0:cw].astype(np.float32)
        warp = 25 * np.sin(y / 90.0) + rng.normal(0, 1, (ch, 1)) * 3
        grain = np.sin((x + warp) / 4.0) * 0.5 + 0.5
        tone = 0.5 + 0.4 * grain
        image = tone[:, :, None] * np.array([40, 90, 150], np.float32)[None, None, :] * 1.4
    elif kind == "paper":
        image = np.full((ch, cw, 3), TABLE, np.float32)
        # A sheet of white paper under the card's right half, reaching the frame.
        image[150:1050, 700:cw] = (236, 238, 240)
        image += rng.normal(0, 2.0, image.shape)
    elif kind == "clutter":
        image = np.full((ch, cw, 3), (120, 125, 130), np.float32)
        for _ in range(60):
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            x0, y0 = int(rng.integers(0, cw)), int(rng.integers(0, ch))
            shape = rng.integers(0, 3)
            if shape == 0:
                x1, y1 = int(rng.integers(0, cw)), int(rng.integers(0, ch))
                cv2.line(image, (x0, y0), (x1, y1), colour, int(rng.integers(1, 6)))
            elif shape == 1:
                size = rng.integers(20, 160, 2)
                cv2.rectangle(image, (x0, y0), (x0 + int(size[0]), y0 + int(size[1])), colour, -1)
            else:
                cv2.putText(
                    image,
                    "".join(chr(int(c)) for c in rng.integers(65, 90, 8)),
                    (x0, y0),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    float(rng.uniform(0.6, 2.0)),
                    colour,
                    2,
                )
    else:
        raise ValueError(kind)
    return np.clip(image, 0, 255).astype(np.uint8)


def scene(
    corners: np.ndarray, kind: str = "table", seed: int = 0, canvas: tuple[int, int] = CANVAS
) -> tuple[np.ndarray, np.ndarray]:
    """The flat card warped onto a background; (image, card->image homography)."""
    card = _flat()
    homography = cv2.getPerspectiveTransform(_card_rect(), corners.astype(np.float32))
    cw, ch = canvas
    warped = cv2.warpPerspective(card, homography, (cw, ch), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(
        np.ones(card.shape[:2], np.float32), homography, (cw, ch), flags=cv2.INTER_LINEAR
    )[:, :, None]
    back = background(kind, seed, canvas).astype(np.float32)
    # A slight soft shadow so the card sits on the table.
    image = warped.astype(np.float32) * mask + back * (1 - mask)
    return np.clip(image, 0, 255).astype(np.uint8), homography


def captured_scene() -> tuple[np.ndarray, np.ndarray]:
    homography = cv2.getPerspectiveTransform(_card_rect(), captured_corners())
    return _captured(), homography


# --------------------------------------------------------------------------- photometric


def gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def motion(image: np.ndarray, length: int, angle: float = 0.0) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    # warpAffine keeps its input's float32; opencv's stubs say any Mat.
    kernel = cv2.warpAffine(kernel, rotation, (length, length))  # type: ignore[assignment]
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel)


def noise(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image.astype(np.float32) + rng.normal(0, sigma, image.shape), 0, 255).astype(
        np.uint8
    )


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return _decoded(cv2.imdecode(data, cv2.IMREAD_COLOR), "a JPEG of the card")


def exposure(image: np.ndarray, ev: float, seed: int = 0) -> np.ndarray:
    """Exposure change by `ev` stops on a linearised image; low light adds
    sensor noise."""
    linear = (image.astype(np.float32) / 255.0) ** 2.2 * (2.0**ev)
    out = np.clip(linear, 0, 1) ** (1 / 2.2) * 255
    if ev < 0:
        rng = np.random.default_rng(seed)
        out += rng.normal(0, 2.0 * (-ev), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def highlight(
    image: np.ndarray,
    homography: np.ndarray,
    centre: tuple[float, float],
    radii: tuple[float, float],
    strength: float = 1.0,
) -> np.ndarray:
    """A specular highlight: a saturated, soft-edged ellipse at `centre` (card
    coordinates, radii in card pixels), mapped into the photo."""
    height, width = image.shape[:2]
    card_mask: np.ndarray = np.zeros((CARD_HEIGHT, CARD_WIDTH), np.float32)
    cv2.ellipse(
        card_mask,
        (round(centre[0]), round(centre[1])),
        (max(1, round(radii[0])), max(1, round(radii[1]))),
        0,
        0,
        360,
        1.0,
        -1,
    )
    card_mask = cv2.GaussianBlur(card_mask, (0, 0), max(1.0, 0.35 * min(radii)))
    card_mask = np.clip(card_mask * 1.6, 0, 1) * strength
    mask = cv2.warpPerspective(card_mask, homography, (width, height))[:, :, None]
    out = image.astype(np.float32) * (1 - mask) + 255.0 * mask
    return np.clip(out, 0, 255).astype(np.uint8)


def crop(image: np.ndarray, homography: np.ndarray, side: str, fraction: float) -> np.ndarray:
    """The photo cut so that `fraction` of the card's extent lies outside it."""
    corners = cv2.perspectiveTransform(_card_rect().reshape(-1, 1, 2), homography).reshape(-1, 2)
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    height, width = image.shape[:2]
    if side == "top":
        return image[int(y0 + fraction * (y1 - y0)) :, :]
    if side == "bottom":
        return image[: int(y1 - fraction * (y1 - y0)), :]
    if side == "left":
        return image[:, int(x0 + fraction * (x1 - x0)) :]
    if side == "right":
        return image[:, : int(x1 - fraction * (x1 - x0))]
    raise ValueError(side)


# --------------------------------------------------------------------------- NIK digits

_DIGITS: list[tuple[float, float, float, float]] | None = None


def nik_digit_boxes() -> list[tuple[float, float, float, float]]:
    """(x, y, w, h) of each of the 16 NIK digits on the flat card."""
    global _DIGITS
    if _DIGITS is None:
        gray = cv2.cvtColor(_flat(), cv2.COLOR_BGR2GRAY)
        band = gray[110:165, 230:640]
        dark = (band < 110).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
        boxes = sorted(
            (
                (float(s[0] + 230), float(s[1] + 110), float(s[2]), float(s[3]))
                for s in stats[1:count]
                if s[3] >= 20 and s[4] >= 30
            ),
            key=lambda box: box[0],
        )
        assert len(boxes) == 16, f"expected 16 NIK digits on the flat card, found {len(boxes)}"
        _DIGITS = boxes
    return _DIGITS


# --------------------------------------------------------------------------- the cases


def _r(fn: Callable[[], tuple[np.ndarray, np.ndarray | None]]) -> Callable[[], Any]:
    return fn


def _base(card: str) -> tuple[np.ndarray, np.ndarray]:
    if card == "captured":
        return captured_scene()
    return scene(project(900, roll=4))


def build_cases() -> list[Case]:
    cases: list[Case] = []

    def add(
        name: str, group: str, card: str, render: Callable[..., Any], expect: str = "read"
    ) -> None:
        cases.append(Case(name, group, card, render, expect))

    for card in ("flat", "captured"):
        add(f"{card}/clean", "clean", card, lambda c=card: _base(c))
    add("flat/frame_scan", "clean", "flat", lambda: (_flat(), np.eye(3)))
    for tilt in (15, 30, 35):
        add(
            f"flat/tilt{tilt}",
            "perspective",
            "flat",
            lambda t=tilt: scene(project(900, tilt=t, roll=3)),
        )
    for roll in (30, 90):
        add(f"flat/rotate{roll}", "rotation", "flat", lambda r=roll: scene(project(800, roll=r)))
    add(
        "flat/tilt30_roll20",
        "perspective",
        "flat",
        lambda: scene(project(900, tilt=30, roll=20)),
    )
    for width in (350, 450, 600):
        add(
            f"flat/width{width}",
            "scale",
            "flat",
            lambda w=width: (lambda s: (gaussian(s[0], 0.6), s[1]))(scene(project(w, roll=3))),
        )
    for card in ("flat", "captured"):
        for sigma in (1.5, 2.0, 2.5, 3.0):
            add(
                f"{card}/gauss{sigma}",
                "blur",
                card,
                lambda c=card, s=sigma: (lambda b: (gaussian(b[0], s), b[1]))(_base(c)),
            )
        for length, angle in ((9, 0), (13, 0), (9, 45)):
            add(
                f"{card}/motion{length}@{angle}",
                "motion",
                card,
                lambda c=card, n=length, a=angle: (lambda b: (motion(b[0], n, a), b[1]))(_base(c)),
            )
        add(
            f"{card}/gauss2.5+noise8",
            "blur",
            card,
            lambda c=card: (lambda b: (noise(gaussian(b[0], 2.5), 8, 3), b[1]))(_base(c)),
        )
        for quality in (15, 8):
            add(
                f"{card}/jpeg{quality}",
                "jpeg",
                card,
                lambda c=card, q=quality: (lambda b: (jpeg(b[0], q), b[1]))(_base(c)),
            )
        for ev in (-3.0, 0.3, 1.2):
            add(
                f"{card}/ev{ev:+.1f}",
                "exposure",
                card,
                lambda c=card, e=ev: (lambda b: (exposure(b[0], e, 5), b[1]))(_base(c)),
            )
        # Large specular glare: over blank card, over text rows, over the portrait.
        centre: tuple[float, float]
        radii: tuple[float, float]
        for where, centre, radii in (
            ("blank", (560, 600), (140, 30)),
            ("text", (420, 400), (120, 45)),
            ("portrait", (860, 260), (70, 60)),
        ):
            add(
                f"{card}/glare_{where}",
                "glare",
                card,
                lambda c=card, ce=centre, ra=radii: (
                    lambda b: (highlight(b[0], b[1], ce, ra), b[1])
                )(_base(c)),
            )
    for kind in ("wood", "wood_fine", "paper", "clutter"):
        add(
            f"flat/{kind}",
            "clutter",
            "flat",
            lambda k=kind: scene(project(820, roll=5, centre=(760, 600)), k, 11),
        )
    for side in ("top", "bottom", "left", "right"):
        add(
            f"flat/cut_{side}",
            "cut",
            "flat",
            lambda s=side: (lambda b: (crop(b[0], b[1], s, 0.10), None))(
                scene(project(1000, roll=2))
            ),
            "outside",
        )
    # Single-digit highlight probes: every NIK digit, upper and lower half.
    rng = np.random.default_rng(20)
    for card in ("flat", "captured"):
        for index, (x, y, w, h) in enumerate(nik_digit_boxes()):
            # One probe per digit, in its upper or lower half (seeded).
            dx, dy = rng.uniform(-0.15, 0.15, 2)
            half = "upper" if rng.uniform() < 0.5 else "lower"
            cy = y + h * (0.3 if half == "upper" else 0.7) + dy * h
            centre = (x + w * (0.5 + dx), cy)
            radii = (w * 0.38, h * 0.2)
            add(
                f"{card}/probe_nik{index:02d}_{half}",
                "probe",
                card,
                lambda c=card, ce=centre, ra=radii: (
                    lambda b: (highlight(b[0], b[1], ce, ra), b[1])
                )(_base(c)),
            )
    return cases


# --------------------------------------------------------------------------- attacks


def _halftone(card: np.ndarray, period: float) -> np.ndarray:
    """The card printed in CMY halftone (screens at 15, 75 and 0 degrees,
    `period` pixels per dot) on white paper."""
    rgb = card.astype(np.float32) / 255.0
    height, width = card.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.ones((height, width, 3), np.float32)
    for ink, angle, channel in (
        (1 - rgb[:, :, 2], 15, 2),
        (1 - rgb[:, :, 1], 75, 1),
        (1 - rgb[:, :, 0], 0, 0),
    ):
        t = math.radians(angle)
        u = (xx * math.cos(t) + yy * math.sin(t)) * 2 * math.pi / period
        v = (-xx * math.sin(t) + yy * math.cos(t)) * 2 * math.pi / period
        dots = (ink > (np.cos(u) + np.cos(v)) / 4 + 0.5).astype(np.float32)
        out[:, :, channel] *= 1 - cv2.GaussianBlur(dots, (0, 0), 0.6) * 0.95
    return np.clip(out * 245, 0, 255).astype(np.uint8)


def _photocopy(card: np.ndarray, seed: int) -> np.ndarray:
    gray = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gray = np.clip((gray - 60) * 1.4 + np.random.default_rng(seed).normal(0, 6, gray.shape), 0, 255)
    return cv2.cvtColor(gray.astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _photographed(printed: np.ndarray, width: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A printed card on a table, photographed (σ 0.7 lens blur, noise, JPEG 85)."""
    h0, w0 = printed.shape[:2]
    rect = np.array([[0, 0], [w0 - 1, 0], [w0 - 1, h0 - 1], [0, h0 - 1]], np.float32)
    corners = project(width, roll=3)
    homography = cv2.getPerspectiveTransform(rect, corners)
    warped = cv2.warpPerspective(printed, homography, CANVAS, flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.ones((h0, w0), np.float32), homography, CANVAS)[:, :, None]
    image = warped.astype(np.float32) * mask + background("table", seed).astype(np.float32) * (
        1 - mask
    )
    image = noise(np.clip(gaussian(image, 0.7), 0, 255).astype(np.uint8), 2, seed)
    return jpeg(image, 85), cv2.getPerspectiveTransform(_card_rect(), corners)


def build_attacks() -> list[Case]:
    """Presentation attacks rendered from the flat card: halftone prints at
    85 and 150 lpi (about 3.5 and 2 card pixels per dot at 300 dpi) shot close
    and at a normal distance, a photocopy, and screens (RGB-stripe display,
    tests.support.ktp.screen_recapture) close, far and at a density near the
    camera's resolution."""
    from tests.support.ktp import screen_recapture

    cases: list[Case] = []
    big = cv2.resize(_flat(), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    size = (CARD_WIDTH * 2, CARD_HEIGHT * 2)
    for lpi, period in ((85, 3 * 3.5), (150, 3 * 2.0)):
        for distance, width in (("close", 1400), ("normal", 900)):
            cases.append(
                Case(
                    f"attack/print{lpi}_{distance}",
                    "print",
                    "flat",
                    lambda p=period, w=width: _photographed(
                        cv2.resize(_halftone(big, p), size, interpolation=cv2.INTER_AREA), w, 3
                    ),
                    "attack",
                )
            )
    for distance, width in (("close", 1400), ("normal", 900)):
        cases.append(
            Case(
                f"attack/photocopy_{distance}",
                "photocopy",
                "flat",
                lambda w=width: _photographed(_photocopy(cv2.resize(_flat(), size), 4), w, 4),
                "attack",
            )
        )
    for name, scale in (("close", 0.45), ("far", 0.3), ("dense", 0.2)):
        cases.append(
            Case(
                f"attack/screen_{name}",
                "screen",
                "flat",
                # opencv's None: see _flat.
                lambda s=scale: (  # type: ignore[arg-type, return-value]
                    cv2.imdecode(
                        np.frombuffer(screen_recapture(_flat(), scale=s), np.uint8),
                        cv2.IMREAD_COLOR,
                    ),
                    None,
                ),
                "attack",
            )
        )
    return cases


SUBSET = (
    "flat/clean",
    "captured/motion9@0",
    "captured/probe_nik03",
    "flat/cut_right",
)


# --------------------------------------------------------------------------- scoring


def _finder_ok(report: Any, homography: np.ndarray | None) -> bool | None:
    if homography is None:
        return None
    if not report.card_found:
        return False
    truth = cv2.perspectiveTransform(_card_rect().reshape(-1, 1, 2), homography).reshape(-1, 2)
    found = np.array(report.card_corners, np.float32)
    width = float(np.linalg.norm(truth[1] - truth[0]))
    # The card may have been turned (corners in another order): best rotation.
    errors = [
        float(np.max(np.linalg.norm(np.roll(found, k, axis=0) - truth, axis=1))) for k in range(4)
    ]
    return min(errors) <= 0.04 * width


# The flash challenge every case answers (services/liveness/flash.py).
FLASH_SEQUENCE = ["#FF0000", "#00FF00", "#0000FF", "#FFFF00"]
FLASH_DURATION_MS = 400


def flash_thumbnails(case: Case, image: np.ndarray) -> list[np.ndarray]:
    """The capture's frames under the flash, as capture-quality keeps them: a
    card or a print on paper reflects the screen's light (tint); a screen
    shows the card with its own light and reflects only a little of it."""
    from identity_ktp.flash import thumbnail
    from tests.support.biometrics import flash_frames, screen_flash_frames

    render = screen_flash_frames if case.group == "screen" else flash_frames
    return [
        thumbnail(
            _decoded(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), "a frame")
        )
        for data in render(image, FLASH_SEQUENCE)
    ]


def flash_verdict(report: Any) -> Any:
    """Liveness's judgement of the card's answer to the flash (its defaults)."""
    from identity_ktp.flash import MIN_RESPONSE
    from services.liveness import flash

    colours = [
        flash.FrameColour(i * FLASH_DURATION_MS, card, True)
        for i, (card, _) in enumerate(report.flash_colours)
    ]
    return flash.verify(
        FLASH_SEQUENCE, FLASH_DURATION_MS, colours, min_response=MIN_RESPONSE, subject="card"
    )


def run_case(analyzer: Any, case: Case) -> Outcome:
    truth = ground_truth()
    image, homography = case.render()
    flashed = flash_thumbnails(case, image)
    start = time.perf_counter()
    report = analyzer.analyze(image, flash_frames=flashed)
    seconds = time.perf_counter() - start
    answered = flash_verdict(report)
    read = {name: value.value for name, value in report.fields.items()}
    correct = sum(read.get(name) == truth[name] for name in SCORED_FIELDS)
    nik = read.get(f.NIK, "")
    nik_valid = report.nik is not None and report.nik.valid
    # What kyc-tier keeps for a customer without a partner NIK (flows/ktp.py).
    confirmed = bool(getattr(report, "nik_confirmed", True))
    stored = bool(report.passed and nik_valid and nik and confirmed)
    gates = [m.name for m in report.measures if not m.passed]
    reasons = sorted({r.code for r in report.reasons})
    finder_ok = _finder_ok(report, homography)
    if case.expect == "outside":
        # Right: the cut is named, or at least nothing is read from it.
        finder_ok = "CARD_PARTIALLY_OUTSIDE" in reasons or not report.card_found
    return Outcome(
        name=case.name,
        group=case.group,
        card=case.card,
        card_found=report.card_found,
        finder_ok=finder_ok,
        reasons=reasons,
        gates_failed=gates,
        fields_correct=correct,
        nik_exact=nik == DEV_NIK,
        nik_read=bool(nik),
        # What kyc-tier decides: the card check and liveness's flash verdict.
        passed=report.passed and answered.passed,
        nik_stored=stored and answered.passed,
        wrong_nik_passed=bool(report.passed and nik and nik != DEV_NIK),
        wrong_nik_stored=bool(stored and nik != DEV_NIK),
        seconds=seconds,
        extra={
            "decisive": sorted(s.code for s in report.signals if s.decisive),
            "signals": sorted(s.code for s in report.signals),
            "flash": [code for code, _ in answered.reasons],
        },
    )


def run(analyzer: Any, cases: Iterable[Case]) -> list[Outcome]:
    return [run_case(analyzer, case) for case in cases]
