"""A small subset of the KTP robustness sweep (tools/bench/ktp_harness.py)
through the real pipeline (OCR and face models): a clean card is read and
kept, a highlight over a NIK digit never leaves a wrong NIK stored, motion
blur is a retake without a decisive tamper signal, and a card cut by the
frame is named, never read stretched."""

from __future__ import annotations

import pytest

from identity_ktp.analysis import KtpAnalyzer
from identity_ktp.ocr import OcrEngine
from identity_ktp.portrait import PortraitFinder, load_face_detector
from identity_ktp.regions import default_index
from tests.support.ktp_sweep import SCORED_FIELDS, SUBSET, Outcome, build_cases, run_case

pytestmark = [pytest.mark.models, pytest.mark.slow]


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    analyzer = KtpAnalyzer(
        OcrEngine(threads=2), PortraitFinder(load_face_detector()), default_index()
    )
    cases = [c for c in build_cases() if any(c.name.startswith(name) for name in SUBSET)]
    assert len(cases) == len(SUBSET)
    return {
        name: run_case(analyzer, c) for name in SUBSET for c in cases if c.name.startswith(name)
    }


def test_a_clean_card_is_read_confirmed_and_kept(outcomes) -> None:
    clean = outcomes["flat/clean"]
    assert clean.fields_correct == len(SCORED_FIELDS) and clean.nik_exact
    assert clean.passed and clean.nik_stored and clean.finder_ok
    assert clean.reasons == [] and clean.gates_failed == []


def test_a_highlight_over_a_nik_digit_never_stores_a_wrong_nik(outcomes) -> None:
    # Before the confirmation this probe stored a NIK with a misread digit.
    probe = outcomes["captured/probe_nik03"]
    assert not probe.wrong_nik_stored and not probe.wrong_nik_passed
    assert "CARD_HIGHLIGHT_ON_TEXT" in probe.reasons and not probe.nik_stored


def test_motion_blur_is_a_retake_without_a_decisive_signal(outcomes) -> None:
    blurred = outcomes["captured/motion9@0"]
    assert not blurred.perfect  # OCR does fail here: the gate must say so
    assert "card_text_sharpness" in blurred.gates_failed
    assert "CARD_TOO_BLURRY" in blurred.reasons
    assert blurred.extra["decisive"] == []
    assert not blurred.nik_stored


def test_a_card_cut_by_the_frame_is_partially_outside(outcomes) -> None:
    cut = outcomes["flat/cut_right"]
    assert cut.reasons == ["CARD_PARTIALLY_OUTSIDE"]
    assert not cut.passed and cut.fields_correct == 0
