"""Parsing OCR lines into KTP fields, and layout consistency, on hand-made OCR output."""

from __future__ import annotations

import random

import pytest

from identity_ktp.fields import parse_card, parse_fields
from identity_ktp.layout import check_layout
from identity_ktp.ocr import OcrLine
from identity_ktp.portrait import Face

WIDTH, HEIGHT = 1012, 638


def box(
    text: str,
    x: float,
    y: float,
    width: float | None = None,
    height: float = 24,
    confidence: float = 0.99,
) -> OcrLine:
    width = width if width is not None else 11 * len(text)
    return OcrLine(
        text, confidence, ((x, y), (x + width, y), (x + width, y + height), (x, y + height))
    )


# The dev card's rows as RapidOCR returns them (label and value boxes apart).
ROWS = [
    ("Nama", ": SITI RAHAYU", 168),
    ("Tempat/Tgl Lahir", ": BANDUNG, 01-07-1995", 203),
    ("Jenis Kelamin", ": PEREMPUAN", 237),
    ("Alamat", ": JL. DAGO NO. 45", 271),
    ("RT/RW", ":002/007", 304),
    ("Kel/Desa", ": LEBAKGEDE", 339),
    ("Kecamatan", ": COBLONG", 373),
    ("Agama", ": ISLAM", 407),
    ("Status Perkawinan", ": BELUM KAWIN", 440),
    ("Pekerjaan", ": PELAJAR/MAHASISWA", 474),
    ("Kewarganegaraan", ": WNI", 508),
    ("Berlaku Hingga", ": SEUMUR HIDUP", 542),
]
INDENTED = {"RT/RW", "Kel/Desa", "Kecamatan"}


def dev_card_lines(merge: bool = False) -> list[OcrLine]:
    lines = [
        box("PROVINSI JAWA BARAT", 313, 25, 385, 31),
        box("KOTA BANDUNG", 370, 64, 272, 29),
        box("NIK", 26, 119, 78, 37),
        box(":3273024107950003", 213, 121, 405, 32),
        box("Gol. Darah : A", 432, 236, 151, 24, 0.95),
        box("KOTA BANDUNG", 775, 446),
        box("03-02-2019", 799, 473),
    ]
    for label, value, y in ROWS:
        x = 54 if label in INDENTED else 26
        if merge:
            lines.append(box(f"{label} {value}", x, y, 460))
        else:
            lines += [box(label, x, y), box(value, 248, y)]
    return lines


def expected_values() -> dict[str, str]:
    return {
        "province": "JAWA BARAT",
        "regency": "KOTA BANDUNG",
        "nik": "3273024107950003",
        "name": "SITI RAHAYU",
        "birth_place": "BANDUNG",
        "birth_date": "01-07-1995",
        "gender": "PEREMPUAN",
        "blood_type": "A",
        "address": "JL. DAGO NO. 45",
        "rt_rw": "002/007",
        "village": "LEBAKGEDE",
        "district": "COBLONG",
        "religion": "ISLAM",
        "marital_status": "BELUM KAWIN",
        "occupation": "PELAJAR/MAHASISWA",
        "nationality": "WNI",
        "valid_until": "SEUMUR HIDUP",
        "issue_place": "KOTA BANDUNG",
        "issue_date": "03-02-2019",
    }


def values(lines: list[OcrLine]) -> dict[str, str]:
    return {name: v.value for name, v in parse_fields(lines, WIDTH).items()}


def test_separate_label_and_value_boxes() -> None:
    assert values(dev_card_lines()) == expected_values()


def test_label_and_value_in_one_box() -> None:
    assert values(dev_card_lines(merge=True)) == expected_values()


def test_box_order_does_not_matter() -> None:
    lines = dev_card_lines()
    random.Random(3).shuffle(lines)
    assert values(lines) == expected_values()


@pytest.mark.parametrize(
    ("original", "noisy"),
    [
        (":3273024107950003", ": 32730241O795OOO3"),  # O for 0
        (":3273024107950003", ":3273 0241 0795 0003"),
        ("Kewarganegaraan", "Kewarqanegaraan"),
        ("Tempat/Tgl Lahir", "TempatTgl Lahir"),
        ("Kel/Desa", "KelDesa"),
        (": PEREMPUAN", ": PEREMPUAM"),
        (": ISLAM", ": ISLAN"),
        (": BELUM KAWIN", "BELUMKAWIN"),
        (": SEUMUR HIDUP", ": SEUMUR HIDUF"),
        (":002/007", ": 002 / 007"),
        (":002/007", ":0021007"),
        (": BANDUNG, 01-07-1995", ": BANDUNG. 01-07-1995"),
        (": BANDUNG, 01-07-1995", ":BANDUNG,01-07-1995"),
    ],
)
def test_ocr_noise_is_cleaned(original: str, noisy: str) -> None:
    lines = [
        box(noisy, line.left, line.top, line.right - line.left) if line.text == original else line
        for line in dev_card_lines()
    ]
    assert values(lines) == expected_values()


def test_blood_type_merged_into_the_gender_value() -> None:
    lines = [line for line in dev_card_lines() if not line.text.startswith(("Gol", ": PEREMPUAN"))]
    lines.append(box(": LAKI-LAKI    Gol. Darah : AB", 248, 237, 330))
    read = values(lines)
    assert (read["gender"], read["blood_type"]) == ("LAKI-LAKI", "AB")


def test_a_missing_blood_type_is_a_dash() -> None:
    lines = [
        box("Gol. Darah : -", line.left, line.top) if line.text.startswith("Gol") else line
        for line in dev_card_lines()
    ]
    assert values(lines)["blood_type"] == "-"


def test_dki_header_without_kota_word() -> None:
    lines = [line for line in dev_card_lines() if line.top > 100] + [
        box("PROVINSI DKI JAKARTA", 313, 25, 385, 31),
        box("JAKARTA SELATAN", 360, 64, 290, 29),
    ]
    read = values(lines)
    assert (read["province"], read["regency"]) == ("DKI JAKARTA", "JAKARTA SELATAN")


def test_field_confidence_is_the_lowest_of_its_boxes() -> None:
    lines = [
        box(line.text, line.left, line.top, line.right - line.left, confidence=0.42)
        if line.text == ": SITI RAHAYU"
        else line
        for line in dev_card_lines()
    ]
    assert parse_fields(lines, WIDTH)["name"].confidence == pytest.approx(0.42)


def test_unlabelled_rows_are_ignored() -> None:
    lines = dev_card_lines() + [box("random sticker text", 30, 600)]
    assert values(lines) == expected_values()


# --- layout ---------------------------------------------------------------

PORTRAIT = Face(
    (799, 155, 136, 160), ((840, 222), (904, 222), (875, 250), (839, 271), (900, 272)), 0.95
)


def test_the_dev_layout_is_consistent() -> None:
    report = check_layout(parse_card(dev_card_lines(), WIDTH), PORTRAIT, WIDTH, HEIGHT)
    assert report.failed == () and not report.inconsistent
    assert len(report.checked) == 8


def test_rows_moved_out_of_place_are_inconsistent() -> None:
    moved = []
    for line in dev_card_lines():
        if line.text in ("Agama", ": ISLAM"):
            moved.append(box(line.text, line.left, 150, line.right - line.left))
        elif line.text in ("Nama", ": SITI RAHAYU"):
            moved.append(box(line.text, line.left + 60, 407, line.right - line.left))
        else:
            moved.append(line)
    report = check_layout(parse_card(moved, WIDTH), PORTRAIT, WIDTH, HEIGHT)
    assert report.inconsistent
    assert {"row_order", "row_positions"} <= set(report.failed)


def test_a_portrait_on_the_wrong_side_is_out_of_place() -> None:
    left = Face((60, 150, 136, 160), PORTRAIT.landmarks, 0.95)
    report = check_layout(parse_card(dev_card_lines(), WIDTH), left, WIDTH, HEIGHT)
    assert report.portrait_in_place is False and report.inconsistent


def test_a_long_address_wrapping_onto_a_second_line_is_joined() -> None:
    lines = []
    for line in dev_card_lines():
        if line.top >= 304 and line.top < 600 and line.left < 700:
            lines.append(
                box(line.text, line.left, line.top + 34, line.right - line.left)
            )  # push rows down
        else:
            lines.append(line)
    lines.append(box("BLOK C/12 PERUMAHAN DAGO", 262, 305, 300))
    read = values(lines)
    assert read["address"] == "JL. DAGO NO. 45 BLOK C/12 PERUMAHAN DAGO"
    assert read["rt_rw"] == "002/007"


def test_an_unlabelled_line_elsewhere_is_not_appended() -> None:
    lines = dev_card_lines() + [box("SCRIBBLE", 248, 590)]
    assert values(lines) == expected_values()


def test_stray_text_after_a_closed_vocabulary_value_is_dropped() -> None:
    lines = dev_card_lines() + [box("SCRIBBLE", 600, 410)]
    assert values(lines)["religion"] == "ISLAM"
