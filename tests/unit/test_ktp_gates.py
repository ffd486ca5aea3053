"""The KTP capture gates and card finder on the sweep's renders (no OCR):
text sharpness counts motion blur and is not fooled by noise, glare is
measured against the card's own background, a tilted card is still ID-1, a
card cut by the frame is named, and a poor capture has no decisive signal."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from identity_inference.quality import Measure
from identity_ktp import analysis
from identity_ktp.analysis import KtpAnalyzer, KtpReport, Signal
from identity_ktp.card import (
    CARD_HEIGHT,
    CARD_WIDTH,
    ID1_ASPECT,
    find_card,
    perspective_aspects,
    relative_glare,
    text_sharpness,
)
from identity_ktp.regions import default_index
from identity_ktp.thresholds import Thresholds
from tests.support import ktp_sweep as sweep

LIMITS = Thresholds()


def rectified(image: np.ndarray, homography: np.ndarray) -> np.ndarray:
    return cv2.warpPerspective(image, np.linalg.inv(homography), (CARD_WIDTH, CARD_HEIGHT))


@pytest.fixture(scope="module")
def base() -> tuple[np.ndarray, np.ndarray]:
    return sweep.captured_scene()


def sharpness(image: np.ndarray, homography: np.ndarray) -> float:
    return text_sharpness(rectified(image, homography))


def test_a_sharp_capture_passes_the_sharpness_gate(base) -> None:
    assert sharpness(*base) >= LIMITS.sharpness_min


@pytest.mark.parametrize("sigma", [1.5, 2.0])
def test_blur_ocr_still_reads_passes(base, sigma: float) -> None:
    image, homography = base
    assert sharpness(sweep.gaussian(image, sigma), homography) >= LIMITS.sharpness_min


@pytest.mark.parametrize(
    "degrade",
    [
        lambda image: sweep.gaussian(image, 2.5),
        lambda image: sweep.motion(image, 9, 0),
        lambda image: sweep.motion(image, 9, 45),
        lambda image: sweep.noise(sweep.gaussian(image, 2.5), 8, 3),
    ],
    ids=["gauss2.5", "motion9@0", "motion9@45", "gauss2.5+noise8"],
)
def test_blur_that_breaks_ocr_fails_the_sharpness_gate(base, degrade) -> None:
    image, homography = base
    assert sharpness(degrade(image), homography) < LIMITS.sharpness_min


@pytest.mark.parametrize("ev", [0.3, 1.2])
def test_a_light_or_over_exposed_card_is_not_glare(base, ev: float) -> None:
    image, homography = base
    assert relative_glare(rectified(sweep.exposure(image, ev), homography)) == 0.0


def test_a_specular_highlight_is_glare(base) -> None:
    image, homography = base
    glared = sweep.highlight(image, homography, (420, 400), (120, 45))
    assert relative_glare(rectified(glared, homography)) > 0.01


@pytest.mark.parametrize("tilt", [0, 15, 30, 35])
def test_a_tilted_card_has_an_id1_aspect_under_perspective(tilt: int) -> None:
    quad = sweep.project(900, tilt=tilt, roll=20, centre=(700, 500))
    aspects = perspective_aspects(quad, sweep.CANVAS)
    assert any(abs(a - ID1_ASPECT) <= 0.1 * ID1_ASPECT for a in aspects)


@pytest.mark.parametrize(("width", "height"), [(800, 800), (800, 600), (900, 300)])
def test_other_rectangles_are_not_id1(width: int, height: int) -> None:
    quad = np.array(
        [[100, 100], [100 + width, 100], [100 + width, 100 + height], [100, 100 + height]]
    )
    aspects = perspective_aspects(quad.astype(float), sweep.CANVAS)
    assert all(abs(a - ID1_ASPECT) > 0.1 * ID1_ASPECT for a in aspects)


@pytest.mark.parametrize("tilt", [30, 35])
def test_a_card_tilted_30_degrees_is_found(tilt: int) -> None:
    image, _ = sweep.scene(sweep.project(900, tilt=tilt, roll=3))
    location = find_card(image)
    assert location is not None and not location.touches_border


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_a_card_cut_by_the_frame_touches_the_border(side: str) -> None:
    image, homography = sweep.scene(sweep.project(1000, roll=2))
    location = find_card(sweep.crop(image, homography, side, 0.10))
    assert location is None or location.touches_border


def test_a_whole_card_does_not_touch_the_border() -> None:
    image, _ = sweep.scene(sweep.project(1000, roll=2))
    location = find_card(image)
    assert location is not None and not location.touches_border


def test_a_cut_card_is_partially_outside_and_not_read() -> None:
    image, homography = sweep.scene(sweep.project(1000, roll=2))

    class NoOcr:
        model_id = "none"

        def read(self, image):  # pragma: no cover - must not be reached
            raise AssertionError("a cut card must not be read")

    analyzer = KtpAnalyzer(NoOcr(), None, default_index())  # type: ignore[arg-type]
    report = analyzer.analyze(sweep.crop(image, homography, "right", 0.10))
    assert [r.code for r in report.reasons] == [analysis.CARD_PARTIALLY_OUTSIDE]
    assert not report.passed and report.fields == {}


def decisive_after(measures: list[Measure]) -> list[bool]:
    report = KtpReport(card_found=True, measures=measures)
    report.signals = [Signal(analysis.NIK_BIRTH_DATE_MISMATCH, 0.9, True, "x")]
    analyzer = KtpAnalyzer(None, None, default_index())  # type: ignore[arg-type]
    analyzer._cross_check(report, "", {})
    return [s.decisive for s in report.signals]


def test_a_poor_capture_raises_no_decisive_signal() -> None:
    blurry = Measure("card_text_sharpness", 0.15, ">= 0.19", False, "CARD_TOO_BLURRY")
    # The birth-date contradiction and the missing portrait, both demoted.
    assert decisive_after([blurry]) == [False, False]


def test_a_good_capture_keeps_decisive_signals() -> None:
    sharp = Measure("card_text_sharpness", 0.29, ">= 0.19", True, "")
    assert decisive_after([sharp]) == [True, True]


def test_a_photocopy_has_no_colour_in_its_portrait() -> None:
    from identity_ktp.layout import PORTRAIT_ZONE
    from identity_ktp.recapture import PHOTOCOPY_CHROMA_MAX, portrait_chroma

    copy = next(c for c in sweep.build_attacks() if c.name == "attack/photocopy_normal")
    image, homography = copy.render()
    assert portrait_chroma(rectified(image, homography), PORTRAIT_ZONE) < PHOTOCOPY_CHROMA_MAX


@pytest.mark.parametrize("ev", [0.0, -3.0])
def test_a_genuine_card_portrait_is_in_colour_even_dim(base, ev: float) -> None:
    from identity_ktp.layout import PORTRAIT_ZONE
    from identity_ktp.recapture import PHOTOCOPY_CHROMA_MAX, portrait_chroma

    image, homography = base
    card = rectified(sweep.exposure(image, ev, 5), homography)
    assert portrait_chroma(card, PORTRAIT_ZONE) > 2 * PHOTOCOPY_CHROMA_MAX


def screen_signal(score: float, measures: list[Measure]) -> Signal | None:
    from identity_ktp.recapture import RecaptureCues

    report = KtpReport(card_found=True, measures=measures)
    report.recapture = RecaptureCues(2.5 + 2.0 * score, 0.0, score)
    report.portrait = object()  # type: ignore[assignment]
    analyzer = KtpAnalyzer(None, None, default_index())  # type: ignore[arg-type]
    analyzer._cross_check(report, "", {})
    return next((s for s in report.signals if s.code == "SCREEN_RECAPTURE_SUSPECTED"), None)


SHARP = Measure("card_text_sharpness", 0.29, ">= 0.19", True, "")


def test_a_saturated_recapture_cue_on_a_sharp_capture_is_decisive() -> None:
    signal = screen_signal(0.94, [SHARP])  # the weakest simulated attack
    assert signal is not None and signal.decisive


def test_the_strongest_genuine_recapture_score_is_reported_not_decisive() -> None:
    signal = screen_signal(0.6, [SHARP])
    assert signal is not None and not signal.decisive
    assert screen_signal(0.44, [SHARP]) is None  # the sweep's highest genuine score


def test_motion_blur_periodic_peaks_are_not_a_decisive_recapture() -> None:
    blurry = Measure("card_text_sharpness", 0.16, ">= 0.19", False, "CARD_TOO_BLURRY")
    signal = screen_signal(1.0, [blurry])
    assert signal is not None and not signal.decisive


@pytest.mark.parametrize("kind", ["wood", "wood_fine", "paper", "clutter"])
def test_the_card_is_found_on_busy_and_light_backgrounds(kind: str) -> None:
    image, homography = sweep.scene(sweep.project(820, roll=5, centre=(760, 600)), kind, 11)
    location = find_card(image)
    assert location is not None and not location.touches_border
    truth = cv2.perspectiveTransform(
        np.array(
            [[0, 0], [CARD_WIDTH - 1, 0], [CARD_WIDTH - 1, CARD_HEIGHT - 1], [0, CARD_HEIGHT - 1]],
            np.float32,
        ).reshape(-1, 1, 2),
        homography,
    ).reshape(-1, 2)
    assert np.abs(np.array(location.corners) - truth).max() <= 0.04 * 820
