"""Compare our KTP reader with the PyPI leads `akshara-ocr` and `fktd` on the dev cards.

All three get the same OCR (our verified RapidOCR 3.10 engine, through each
lead's own engine interface), so the comparison is about card handling,
parsing and cross-checks, not about the OCR model. The leads are not project
dependencies; install them (and their pure-Python deps) into a scratch
directory first:

    .venv/bin/pip install --target /tmp/leads_site --no-deps akshara-ocr==0.3.0 fktd==0.1.1
    .venv/bin/pip install --target /tmp/leads_site pydantic python-dateutil
    PYTHONPATH=/tmp/leads_site .venv/bin/python tools/bench/ktp_leads_compare.py

Prints a markdown table: fields matching ground_truth.txt per card, and
whether each tool flags a card whose printed birth date contradicts its NIK.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from identity_ktp.analysis import NIK_BIRTH_DATE_MISMATCH, KtpAnalyzer  # noqa: E402
from identity_ktp.ocr import OcrEngine, OcrLine  # noqa: E402
from identity_ktp.portrait import PortraitFinder, load_face_detector  # noqa: E402
from identity_ktp.regions import default_index  # noqa: E402
from tests.support.ktp import flat_card, ground_truth, ktp_path, on_background, overwrite  # noqa: E402

# A card image -> (its fields, whether the birth date was flagged as contradicting the NIK).
Reader = Callable[[np.ndarray], tuple[dict[str, str], bool]]


def _bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def _rows(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """OCR boxes grouped into rows, left to right: the reading order a
    Tesseract-style engine gives and both leads' parsers expect (raw
    RapidOCR boxes put a row's value before its label when it sits 2 px
    higher, which breaks them; this is their best case)."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda item: item.centre_y):
        for row in rows:
            if abs(np.mean([b.centre_y for b in row]) - line.centre_y) <= 0.5 * line.height:
                row.append(line)
                break
        else:
            rows.append([line])
    return [sorted(row, key=lambda b: b.left) for row in rows]


def akshara_reader(ocr: OcrEngine) -> Reader:
    from akshara_ocr import IDDocOCR
    from akshara_ocr.engines.base import BaseOCREngine

    # Untyped (not installed here, see the overrides in pyproject.toml).
    class RapidEngine(BaseOCREngine):  # type: ignore[misc]
        def extract_text(self, img: np.ndarray) -> dict[str, Any]:
            lines = ocr.read(_bgr(img))
            confidences = [line.confidence * 100 for line in lines]
            return {
                "raw_text": "\n".join(" ".join(b.text for b in row) for row in _rows(lines)),
                "overall_confidence": float(np.mean(confidences)) if confidences else 0.0,
                "word_confidences": [
                    {"word": line.text, "confidence": line.confidence * 100} for line in lines
                ],
            }

    reader = IDDocOCR(doc_type="ktp", engine=RapidEngine(), auto_crop=True)

    def read(image: np.ndarray) -> tuple[dict[str, str], bool]:
        result = reader.extract(image)
        place, _, date = (result.tempat_tanggal_lahir or "").partition(",")
        fields = {
            "nik": result.nik,
            "name": result.nama,
            "birth_place": place.strip(),
            "birth_date": date.strip(),
            "gender": result.jenis_kelamin,
            "address": result.alamat,
            "religion": result.agama,
            "marital_status": result.status_perkawinan,
            "occupation": result.pekerjaan,
            "nationality": result.kewarganegaraan,
            "valid_until": result.berlaku_hingga,
        }
        # akshara has no date/gender cross-check that reports a mismatch: it
        # rewrites an invalid NIK from the printed date instead.
        return {k: v for k, v in fields.items() if v}, False

    return read


def fktd_reader(ocr: OcrEngine) -> Reader:
    from fktd import FKTD
    from fktd.ocr.base import OCREngine, OCRWord

    # Untyped (not installed here, see the overrides in pyproject.toml).
    class RapidEngine(OCREngine):  # type: ignore[misc]
        name = "rapidocr"

        def _recognize(self, img_bgr: np.ndarray) -> list[OCRWord]:
            # One shared `top` per row, so fktd's top // 15 bucketing keeps rows whole.
            return [
                OCRWord(box.text, box.confidence * 100, int(box.left), int(min(b.top for b in row)))
                for row in _rows(ocr.read(_bgr(img_bgr)))
                for box in row
            ]

    detector = FKTD(engine=RapidEngine(), wilayah_provider="local")

    def read(image: np.ndarray) -> tuple[dict[str, str], bool]:
        result = detector.process(image)
        data = result.data
        fields = {
            "province": re.sub(r"^PROVINSI\s+", "", data.provinsi or ""),
            "regency": data.kota_kabupaten,
            "nik": data.nik,
            "name": data.nama,
            "birth_place": data.tempat_lahir,
            "birth_date": data.tanggal_lahir,
            "gender": data.jenis_kelamin,
            "blood_type": data.golongan_darah,
            "address": data.alamat,
            "rt_rw": data.rt_rw,
            "village": data.kel_desa,
            "district": data.kecamatan,
            "religion": data.agama,
            "marital_status": data.status_perkawinan,
            "occupation": data.pekerjaan,
            "nationality": data.kewarganegaraan,
            "valid_until": data.berlaku_hingga,
        }
        flagged = any(not c.passed and c.code == "nik.dob_match" for c in result.checks)
        return {k: v for k, v in fields.items() if v}, flagged

    return read


def ours_reader(ocr: OcrEngine) -> Reader:
    analyzer = KtpAnalyzer(ocr, PortraitFinder(load_face_detector()), default_index())

    def read(image: np.ndarray) -> tuple[dict[str, str], bool]:
        report = analyzer.analyze(image)
        flagged = any(s.code == NIK_BIRTH_DATE_MISMATCH for s in report.signals)
        return {name: value.value for name, value in report.fields.items()}, flagged

    return read


def _card(name: str) -> np.ndarray:
    image = cv2.imread(str(ktp_path(name)))
    assert image is not None, name
    return image


def main() -> None:
    ocr = OcrEngine(threads=2)
    readers = {
        "ours (identity_ktp)": ours_reader(ocr),
        "akshara-ocr 0.3.0": akshara_reader(ocr),
        "fktd 0.1.1": fktd_reader(ocr),
    }
    truth = ground_truth()
    cards = {
        "ktp_flat.png": _card("ktp_flat.png"),
        "ktp_captured.jpg": _card("ktp_captured.jpg"),
        "flat on a table, rotated 3 deg": on_background(flat_card()),
    }
    # Flat (no rectification needed), so every tool can read it.
    edited = overwrite(flat_card(), (250, 200, 520, 229), ": BANDUNG, 01-08-1995")

    print(f"| tool | {' | '.join(cards)} | birth date edited: flagged? |")
    print("|---|" + "---|" * (len(cards) + 1))
    misses: dict[str, set[str]] = {}
    for tool, read in readers.items():
        cells = []
        for image in cards.values():
            try:
                fields, _ = read(image)
            except Exception as exc:  # noqa: BLE001 - a lead crashing is a result
                cells.append(f"error: {type(exc).__name__}")
                continue
            correct = [
                k for k in truth if (fields.get(k) or "").strip().upper() == truth[k].upper()
            ]
            misses.setdefault(tool, set()).update(set(truth) - set(correct))
            cells.append(f"{len(correct)}/{len(truth)}")
        try:
            _, flagged = read(edited)
            cells.append("yes" if flagged else "no")
        except Exception as exc:  # noqa: BLE001
            cells.append(f"error: {type(exc).__name__}")
        print(f"| {tool} | {' | '.join(cells)} |")
    print()
    for tool, missed in misses.items():
        print(
            f"- {tool}: fields missed or wrong on some card: {', '.join(sorted(missed)) or 'none'}"
        )


if __name__ == "__main__":
    main()
