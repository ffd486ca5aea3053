"""Confirming a NIK read from a card: highlights on key rows, the second
read's digits, the NIK's regions against the printed header, the verdict."""

from __future__ import annotations

import datetime as dt

import cv2
import numpy as np
import pytest

from identity_ktp import analysis
from identity_ktp import fields as f
from identity_ktp.analysis import KtpAnalyzer, KtpReport
from identity_ktp.confirm import (
    NikConfirmation,
    highlight_pixels,
    highlighted_rows,
    nik_digits,
    regions_agree,
)
from identity_ktp.fields import FieldValue
from identity_ktp.nik import validate_nik
from identity_ktp.regions import default_index
from tests.support.ktp import DEV_NIK, flat_card

TODAY = dt.date(2026, 11, 26)


def row(background: int = 206) -> np.ndarray:
    region = np.full((40, 400, 3), background, np.uint8)
    cv2.putText(region, "3273024107950003", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1, (20,) * 3, 2)
    return region


def test_a_clean_row_has_no_highlight() -> None:
    assert highlight_pixels(row()) == 0


def test_a_small_clipped_spot_over_a_digit_is_a_highlight() -> None:
    region = row()
    region[12:18, 100:106] = 255  # 36 px, under 0.01 % of a card
    assert highlight_pixels(region) == 36


def test_a_few_clipped_pixels_are_noise_not_a_highlight() -> None:
    region = row()
    region[12:14, 100:103] = 255
    assert highlight_pixels(region) == 0


def test_a_clipped_background_is_exposure_not_a_highlight() -> None:
    region = row(background=250)
    region[12:18, 100:106] = 255
    assert highlight_pixels(region) == 0


def test_the_dev_card_has_no_highlighted_row() -> None:
    assert highlighted_rows(flat_card(), None) == ()


@pytest.mark.parametrize(
    ("name", "y"), [("nik", 140), ("name", 181), ("birth_place", 215)], ids=str
)
def test_a_highlight_names_the_row_it_covers(name: str, y: int) -> None:
    card = flat_card()
    cv2.ellipse(card, (400, y), (8, 5), 0, 0, 360, (255, 255, 255), -1)
    assert highlighted_rows(card, None) == (name,)


def test_a_highlight_elsewhere_is_not_on_a_key_row() -> None:
    card = flat_card()
    cv2.ellipse(card, (400, 420), (8, 5), 0, 0, 360, (255, 255, 255), -1)  # religion row
    assert highlighted_rows(card, None) == ()


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("NIK : 3273024107950003", DEV_NIK),
        ("N1K:3273 0241 0795 0003", DEV_NIK),
        (": 32730241O795OOO3", DEV_NIK),
        ("", ""),
    ],
)
def test_the_second_read_keeps_the_nik_digits_only(text: str, digits: str) -> None:
    assert nik_digits(text) == digits


def header(province: str, regency: str) -> dict[str, FieldValue]:
    return {f.PROVINCE: FieldValue(province, 0.99), f.REGENCY: FieldValue(regency, 0.99)}


@pytest.mark.parametrize(
    ("nik", "province", "regency", "agree"),
    [
        (DEV_NIK, "JAWA BARAT", "KOTA BANDUNG", True),
        (DEV_NIK, "JAWA BARAT", "KOTA BANDUNC", True),  # one OCR slip in the header
        (DEV_NIK, "JAWA BARAT", "KABUPATEN BANDUNG", False),  # 32.04, not 32.73
        (DEV_NIK, "JAWA BARAT", "KOTA BEKASI", False),
        (DEV_NIK, "JAWA TENGAH", "KOTA BANDUNG", False),
        ("3174024107950003", "DKI JAKARTA", "JAKARTA SELATAN", True),
        ("3174024107950003", "DKI JAKARTA", "JAKARTA TIMUR", False),
        # A regency code retired by the Kalimantan Utara split, on a card
        # printed before (old province) and after it (new province).
        ("6404024107950003", "KALIMANTAN TIMUR", "KABUPATEN BULUNGAN", True),
        ("6404024107950003", "KALIMANTAN UTARA", "KABUPATEN BULUNGAN", True),
    ],
)
def test_the_nik_regions_are_checked_against_the_printed_header(
    nik: str, province: str, regency: str, agree: bool
) -> None:
    check = validate_nik(nik, today=TODAY)
    assert check.valid
    assert regions_agree(check, header(province, regency), default_index()) is agree


def test_no_header_is_nothing_to_compare() -> None:
    check = validate_nik(DEV_NIK, today=TODAY)
    assert regions_agree(check, {}, default_index()) is None


def verdict(confirmation: NikConfirmation, submitted_nik: str = "") -> KtpReport:
    report = KtpReport(card_found=True, confirmation=confirmation)
    report.nik = validate_nik(DEV_NIK, today=TODAY)
    report.fields = {name: FieldValue("X", 0.99) for name in f.REQUIRED_FIELDS}
    report.fields[f.NIK] = FieldValue(DEV_NIK, 0.99)
    analyzer = KtpAnalyzer(None, None, default_index())  # type: ignore[arg-type]
    analyzer._verdict(report, submitted_nik)
    return report


def codes(report: KtpReport) -> list[str]:
    return [r.code for r in report.reasons]


def test_a_confirmed_nik_passes_and_may_be_kept() -> None:
    report = verdict(NikConfirmation((), True, True))
    assert report.passed and report.nik_confirmed
    assert codes(report) == []


def test_a_highlight_on_a_key_row_is_a_retake_and_the_nik_is_not_kept() -> None:
    report = verdict(NikConfirmation(("nik",), True, True))
    assert not report.passed and not report.nik_confirmed
    assert codes(report) == [analysis.CARD_HIGHLIGHT_ON_TEXT, analysis.NIK_UNCONFIRMED]
    assert "submitted_nik" in report.reasons[1].message
    assert DEV_NIK not in " ".join(r.message for r in report.reasons)


def test_two_reads_that_differ_are_a_retake() -> None:
    report = verdict(NikConfirmation((), False, True))
    assert not report.passed
    assert codes(report) == [analysis.NIK_READS_DISAGREE, analysis.NIK_UNCONFIRMED]


def test_no_second_read_is_not_a_confirmation() -> None:
    report = verdict(NikConfirmation((), None, True))
    assert codes(report) == [analysis.NIK_UNCONFIRMED]


def test_regions_unlike_the_header_leave_the_nik_unconfirmed() -> None:
    report = verdict(NikConfirmation((), True, False))
    assert codes(report) == [analysis.NIK_UNCONFIRMED]
    assert "regency/province" in report.reasons[0].message


def test_a_partner_nik_equal_to_the_read_confirms_it() -> None:
    # Moved customers (printed regency is not the NIK's) pass with the partner's NIK.
    assert verdict(NikConfirmation((), True, False), submitted_nik=DEV_NIK).passed
    assert verdict(NikConfirmation((), False, True), submitted_nik=DEV_NIK).passed


def test_a_highlight_is_a_retake_even_with_a_partner_nik() -> None:
    report = verdict(NikConfirmation(("name",), True, True), submitted_nik=DEV_NIK)
    assert codes(report) == [analysis.CARD_HIGHLIGHT_ON_TEXT]
