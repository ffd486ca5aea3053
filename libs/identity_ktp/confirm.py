"""Is the NIK read from the card confirmed? Three independent checks.

A single OCR read of the NIK can be wrong with full confidence: a small
specular highlight over one digit turns a 3 into a 5 or a 2, and when that
digit is a district, a regency of the same province or the serial, no
structural rule can tell (docs/ktp.md, "Never store an unconfirmed NIK").
So before a NIK read from a card may be kept as the customer's:

* no highlight touches the rows identity depends on (NIK, name, birth
  date): a clipped spot brighter than the card's own background there is a
  retake, whatever the OCR says;
* a second, independent read of the NIK row (cut from the *input photo* at
  a larger scale, grey-level contrast-equalised, recognised without the
  detector) gives the same 16 digits;
* the regency and province the NIK encodes are the ones printed in the
  card's header.

Nothing here logs or returns a NIK digit.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from identity_ktp import fields as f
from identity_ktp.fields import FieldValue, ParsedCard
from identity_ktp.layout import ROW_CENTRES
from identity_ktp.nik import NikCheck
from identity_ktp.ocr import OcrEngine, OcrLine
from identity_ktp.regions import RegionIndex

# Rows whose misread changes who the customer is.
KEY_ROWS = (f.NIK, f.NAME, f.BIRTH_PLACE)  # birth date shares the birth-place row
# Half the height of a row band around its template centre (card fraction).
ROW_HALF_HEIGHT = 0.035
ROW_LEFT, ROW_RIGHT = 0.02, 0.68
# A highlight pixel is unsaturated and clipped (every channel >= CLIP_LEVEL)
# and at least CLIP_ABOVE_BACKGROUND above the row's own background; a card
# whose background is itself that bright is over-exposed, not glared.
CLIP_LEVEL = 245
CLIP_ABOVE_BACKGROUND = 20
# Blobs smaller than this (rectified-card pixels) are print or noise.
MIN_HIGHLIGHT_PX = 12
# The second read: NIK row height in pixels of the re-cut patch.
SECOND_READ_HEIGHT = 56


@dataclass(frozen=True)
class NikConfirmation:
    # Highlight pixels found on each key row (empty: none).
    highlighted_rows: tuple[str, ...]
    # None when there was no NIK row to re-read.
    second_read_agrees: bool | None
    # None when the header was not read or the NIK's regions are unknown.
    regions_agree: bool | None

    @property
    def confirmed(self) -> bool:
        return (
            not self.highlighted_rows
            and self.second_read_agrees is True
            and self.regions_agree is not False
        )

    def unconfirmed_because(self) -> list[str]:
        why = []
        if self.highlighted_rows:
            why.append("a highlight covers the " + ", ".join(self.highlighted_rows) + " row")
        if self.second_read_agrees is None:
            why.append("the NIK row could not be read a second time")
        elif not self.second_read_agrees:
            why.append("a second, independent read of the NIK row differs")
        if self.regions_agree is False:
            why.append("the regency/province the NIK encodes is not the one printed")
        return why


def _row_band(
    parsed: ParsedCard | None, name: str, width: int, height: int
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a row: its template band, widened to its OCR boxes."""
    centre = ROW_CENTRES[name] * height
    y0, y1 = centre - ROW_HALF_HEIGHT * height, centre + ROW_HALF_HEIGHT * height
    x0, x1 = ROW_LEFT * width, ROW_RIGHT * width
    boxes: list[OcrLine] = []
    if parsed is not None:
        if name in parsed.label_boxes:
            boxes.append(parsed.label_boxes[name])
        boxes.extend(parsed.value_boxes.get(name, []))
    for box in boxes:
        pad = 0.2 * box.height
        y0, y1 = min(y0, box.top - pad), max(y1, box.bottom + pad)
        x1 = max(x1, box.right)
    return (
        max(0, int(x0)),
        max(0, int(y0)),
        min(width, int(np.ceil(x1))),
        min(height, int(np.ceil(y1))),
    )


def highlight_pixels(region: np.ndarray) -> int:
    """Pixels in blobs of clipped highlight, relative to the region's background."""
    if region.size == 0:
        return 0
    low = region.min(axis=2)
    # The background: the light half of the region (text is dark).
    light = low[low >= np.percentile(low, 50)]
    background = float(np.median(light)) if light.size else 0.0
    if background + CLIP_ABOVE_BACKGROUND > 255:
        return 0  # the background itself is clipped: exposure, not a highlight
    level = max(CLIP_LEVEL, background + CLIP_ABOVE_BACKGROUND)
    mask = (low >= level).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return sum(
        int(stats[i, cv2.CC_STAT_AREA])
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= MIN_HIGHLIGHT_PX
    )


def highlighted_rows(card: np.ndarray, parsed: ParsedCard | None) -> tuple[str, ...]:
    height, width = card.shape[:2]
    found = []
    for name in KEY_ROWS:
        x0, y0, x1, y1 = _row_band(parsed, name, width, height)
        if highlight_pixels(card[y0:y1, x0:x1]):
            found.append(name)
    return tuple(found)


def nik_digits(text: str) -> str:
    """The longest digit run of a NIK row's text (the label's letters, read
    as look-alike digits, are a separate run)."""
    runs = re.findall(r"\d+", re.sub(r"[\s.]", "", text.translate(f._DIGIT_LOOKALIKES)))
    return max(runs, key=len, default="")


def second_nik_read(
    ocr: OcrEngine,
    image: np.ndarray,
    inverse: np.ndarray,
    parsed: ParsedCard,
) -> str | None:
    """The NIK row read again from the input photo: another crop (from the
    photo, not the rectified card), another scale, grey-level CLAHE, the
    recogniser alone. None when the row was not located."""
    boxes = parsed.value_boxes.get(f.NIK) or (
        [parsed.label_boxes[f.NIK]] if f.NIK in parsed.label_boxes else []
    )
    if not boxes:
        return None
    x0 = min(b.left for b in boxes)
    x1 = max(b.right for b in boxes)
    y0 = min(b.top for b in boxes)
    y1 = max(b.bottom for b in boxes)
    pad_y = 0.3 * (y1 - y0)
    pad_x = 0.6 * (y1 - y0)
    source = np.array(
        [[x0 - pad_x, y0 - pad_y], [x1 + pad_x, y0 - pad_y], [x1 + pad_x, y1 + pad_y]],
        np.float32,
    )
    # Rectified-card coordinates to the photo, then onto a patch of fixed height.
    in_photo = cv2.perspectiveTransform(source.reshape(-1, 1, 2), inverse).reshape(-1, 2)
    scale = SECOND_READ_HEIGHT / float(y1 - y0 + 2 * pad_y)
    out_w = max(16, int(round((x1 - x0 + 2 * pad_x) * scale)))
    target = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, SECOND_READ_HEIGHT - 1]], np.float32)
    patch = cv2.warpAffine(
        image,
        cv2.getAffineTransform(in_photo.astype(np.float32), target),
        (out_w, SECOND_READ_HEIGHT),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )
    gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    equalised = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(1, 8)).apply(gray)
    line = ocr.recognise_line(cv2.cvtColor(equalised, cv2.COLOR_GRAY2BGR))
    return nik_digits(line.text) if line is not None else ""


# How provinces are printed on cards versus their names in the dataset.
_ABBREVIATIONS = {
    "DKI ": "DAERAH KHUSUS IBUKOTA ",
    "DI ": "DAERAH ISTIMEWA ",
}
# The kind a printed prefix names; the first that matches wins.
_KINDS = {
    "KOTA ADMINISTRASI ": "KOTA",
    "KOTA ADM ": "KOTA",
    "KABUPATEN ": "KABUPATEN",
    "KAB ": "KABUPATEN",
    "KOTA ": "KOTA",
}


def _region_name(text: str) -> tuple[str, str]:
    """(kind: KOTA, KABUPATEN or "" when not printed, name) of a region."""
    name = " ".join(re.sub(r"[^A-Z ]+", " ", text.upper()).split())
    for short, full in _ABBREVIATIONS.items():
        if name.startswith(short):
            name = full + name[len(short) :]
    for prefix, kind in _KINDS.items():
        if name.startswith(prefix):
            return kind, name[len(prefix) :]
    return "", name


def _same_region(printed: str, official: Sequence[str]) -> bool:
    kind, name = _region_name(printed)
    for other in official:
        if not other:
            continue
        other_kind, other_name = _region_name(other)
        if kind and other_kind and kind != other_kind:
            continue  # Kota Bandung is not Kabupaten Bandung
        if difflib.SequenceMatcher(None, name, other_name).ratio() >= 0.8:
            return True
    return False


def regions_agree(
    nik: NikCheck | None, read: dict[str, FieldValue], regions: RegionIndex
) -> bool | None:
    """Do the printed regency and province name what the NIK encodes? (A
    regency code retired by a province split also agrees with the province
    it moved to.) None when there is nothing to compare."""
    if nik is None or not nik.regency_name or f.REGENCY not in read or f.PROVINCE not in read:
        return None
    regency_ok = _same_region(read[f.REGENCY].value, [nik.regency_name])
    provinces = [nik.province_name]
    if nik.regency_current_code:
        moved_to = regions.province(nik.regency_current_code[:2])
        provinces.append(moved_to.name if moved_to else "")
    province_ok = _same_region(read[f.PROVINCE].value, provinces)
    return regency_ok and province_ok
