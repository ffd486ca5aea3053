"""Layout consistency of a rectified KTP.

The e-KTP front has a fixed layout: the province and regency header centred
at the top, thirteen labelled rows in a fixed order and pitch, labels in one
column (RT/RW, Kel/Desa and Kecamatan indented), values after aligned
colons, and the portrait on the right with the place and date of issue
below it. Pasted or re-typeset text, a swapped photo, or a card that is not
a KTP tends to break some of these relations.

Positions are fractions of the rectified card (1012 x 638 for ID-1); the
template is the specimen layout the synthetic dev card follows. Each check
passes or fails; the score is the fraction of evaluated checks that failed.
OCR misses make checks unavailable rather than failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from identity_ktp import fields as f
from identity_ktp.fields import ParsedCard
from identity_ktp.portrait import Face

# Row centre (fraction of card height) of each labelled row on the specimen.
ROW_CENTRES = {
    f.NIK: 0.215,
    f.NAME: 0.282,
    f.BIRTH_PLACE: 0.336,
    f.GENDER: 0.390,
    f.ADDRESS: 0.444,
    f.RT_RW: 0.497,
    f.VILLAGE: 0.550,
    f.DISTRICT: 0.604,
    f.RELIGION: 0.658,
    f.MARITAL_STATUS: 0.711,
    f.OCCUPATION: 0.765,
    f.NATIONALITY: 0.818,
    f.VALID_UNTIL: 0.870,
}
INDENTED = (f.RT_RW, f.VILLAGE, f.DISTRICT)
ROW_TOLERANCE = 0.06
COLUMN_TOLERANCE = 0.02
# Where the portrait's face centre must be (x0, y0, x1, y1), card fractions.
PORTRAIT_ZONE = (0.70, 0.17, 0.99, 0.72)
# Fraction of failed checks from which the layout is called inconsistent.
INCONSISTENT_FROM = 0.25


@dataclass(frozen=True)
class LayoutReport:
    checked: tuple[str, ...]
    failed: tuple[str, ...]
    portrait_in_place: bool | None

    @property
    def score(self) -> float:
        return len(self.failed) / len(self.checked) if self.checked else 0.0

    @property
    def inconsistent(self) -> bool:
        return self.score >= INCONSISTENT_FROM or self.portrait_in_place is False


def _aligned(values: list[float], tolerance: float) -> bool:
    centre = median(values)
    return all(abs(v - centre) <= tolerance for v in values)


def check_layout(
    card: ParsedCard, portrait: Face | None, width: float, height: float
) -> LayoutReport:
    checked: list[str] = []
    failed: list[str] = []

    def record(name: str, ok: bool) -> None:
        checked.append(name)
        if not ok:
            failed.append(name)

    if card.header is not None:
        centre_x = (card.header.left + card.header.right) / 2 / width
        record(
            "header_position", card.header.centre_y / height < 0.15 and abs(centre_x - 0.5) < 0.15
        )

    rows = {
        name: box.centre_y / height for name, box in card.label_boxes.items() if name in ROW_CENTRES
    }
    if len(rows) >= 3:
        ordered = sorted(rows, key=rows.__getitem__)
        expected = [name for name in f.ROW_ORDER if name in rows]
        record("row_order", ordered == expected)
        record(
            "row_positions",
            all(abs(rows[name] - ROW_CENTRES[name]) <= ROW_TOLERANCE for name in rows),
        )
        pitches = [
            (rows[b] - rows[a]) / (ROW_CENTRES[b] - ROW_CENTRES[a])
            for a, b in zip(expected, expected[1:], strict=False)
        ]
        record("row_pitch", all(0.65 <= p <= 1.35 for p in pitches))

    lefts = [box.left / width for name, box in card.label_boxes.items() if name not in INDENTED]
    if len(lefts) >= 3:
        record("label_column", _aligned(lefts, COLUMN_TOLERANCE))
    indented = [box.left / width for name, box in card.label_boxes.items() if name in INDENTED]
    if len(indented) >= 2:
        record(
            "indented_column",
            _aligned(indented, COLUMN_TOLERANCE) and min(indented) > median(lefts or [0.0]),
        )

    # The NIK value uses a larger font and starts further left.
    value_lefts = [
        boxes[0].left / width for name, boxes in card.value_boxes.items() if boxes and name != f.NIK
    ]
    if len(value_lefts) >= 3:
        record("value_column", _aligned(value_lefts, COLUMN_TOLERANCE))

    portrait_in_place: bool | None = None
    if portrait is not None:
        x, y, w, h = portrait.box
        cx, cy = (x + w / 2) / width, (y + h / 2) / height
        x0, y0, x1, y1 = PORTRAIT_ZONE
        text_overlap = any(
            box.left < x + w and box.right > x and box.top < y + h and box.bottom > y
            for box in card.label_boxes.values()
        )
        portrait_in_place = x0 <= cx <= x1 and y0 <= cy <= y1 and not text_overlap
        record("portrait_position", portrait_in_place)
    return LayoutReport(tuple(checked), tuple(failed), portrait_in_place)
