"""Parse OCR lines of a rectified KTP into its fields.

OCR returns text boxes; a KTP row is "Label : value", which the detector
may return as one box or as a label box and one or more value boxes. Boxes
are grouped into rows by vertical overlap (the portrait column on the right
is kept apart), each row's label is recognised with tolerance for OCR
errors, and values are cleaned per field: digits for the NIK, closed
vocabularies (gender, religion, marital status, blood type, nationality)
snapped to their nearest valid value, dates normalised to DD-MM-YYYY.

Values are as printed on the card (upper case); each field's confidence is
the lowest OCR confidence among the boxes it was read from.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from identity_ktp.ocr import OcrLine

# Field names (KtpField.name).
PROVINCE = "province"
REGENCY = "regency"
NIK = "nik"
NAME = "name"
BIRTH_PLACE = "birth_place"
BIRTH_DATE = "birth_date"
GENDER = "gender"
BLOOD_TYPE = "blood_type"
ADDRESS = "address"
RT_RW = "rt_rw"
VILLAGE = "village"
DISTRICT = "district"
RELIGION = "religion"
MARITAL_STATUS = "marital_status"
OCCUPATION = "occupation"
NATIONALITY = "nationality"
VALID_UNTIL = "valid_until"
ISSUE_PLACE = "issue_place"
ISSUE_DATE = "issue_date"

FIELD_NAMES = (
    PROVINCE,
    REGENCY,
    NIK,
    NAME,
    BIRTH_PLACE,
    BIRTH_DATE,
    GENDER,
    BLOOD_TYPE,
    ADDRESS,
    RT_RW,
    VILLAGE,
    DISTRICT,
    RELIGION,
    MARITAL_STATUS,
    OCCUPATION,
    NATIONALITY,
    VALID_UNTIL,
    ISSUE_PLACE,
    ISSUE_DATE,
)
# Every KTP has these (blood type may be "-", the issue line may be unreadable).
REQUIRED_FIELDS = tuple(
    name for name in FIELD_NAMES if name not in (BLOOD_TYPE, ISSUE_PLACE, ISSUE_DATE)
)

# Printed labels, letters only, upper case -> the row's field.
LABELS = {
    "NIK": NIK,
    "NAMA": NAME,
    "TEMPATTGLLAHIR": BIRTH_PLACE,
    "JENISKELAMIN": GENDER,
    "GOLDARAH": BLOOD_TYPE,
    "ALAMAT": ADDRESS,
    "RTRW": RT_RW,
    "KELDESA": VILLAGE,
    "KECAMATAN": DISTRICT,
    "AGAMA": RELIGION,
    "STATUSPERKAWINAN": MARITAL_STATUS,
    "PEKERJAAN": OCCUPATION,
    "KEWARGANEGARAAN": NATIONALITY,
    "BERLAKUHINGGA": VALID_UNTIL,
}
# Values that may wrap onto a second, unlabelled line.
WRAPPING_FIELDS = (NAME, ADDRESS)
# Order of the labelled rows on the card, top to bottom (blood type shares the
# gender row).
ROW_ORDER = tuple(name for name in LABELS.values() if name != BLOOD_TYPE)

GENDERS = ("LAKI-LAKI", "PEREMPUAN")
RELIGIONS = (
    "ISLAM",
    "KRISTEN",
    "KATOLIK",
    "HINDU",
    "BUDDHA",
    "BUDHA",
    "KHONGHUCU",
    "KONGHUCU",
    "KEPERCAYAAN TERHADAP TUHAN YME",
)
MARITAL_STATUSES = ("BELUM KAWIN", "KAWIN", "CERAI HIDUP", "CERAI MATI")
BLOOD_TYPES = ("A", "B", "AB", "O", "-")
NATIONALITIES = ("WNI", "WNA")
FOR_LIFE = "SEUMUR HIDUP"

# Characters OCR confuses with digits, for fields that are digits only.
_DIGIT_LOOKALIKES = str.maketrans(
    {
        "O": "0",
        "o": "0",
        "D": "0",
        "Q": "0",
        "U": "0",
        "I": "1",
        "l": "1",
        "|": "1",
        "!": "1",
        "i": "1",
        "L": "1",
        "Z": "2",
        "z": "2",
        "S": "5",
        "s": "5",
        "G": "6",
        "b": "6",
        "T": "7",
        "B": "8",
        "g": "9",
        "q": "9",
    }
)
_DATE = re.compile(r"(\d{1,2})\s*[-./ ]\s*(\d{1,2})\s*[-./ ]\s*(\d{4})")
_PORTRAIT_COLUMN = 0.70  # boxes starting right of this fraction of the width


@dataclass(frozen=True)
class FieldValue:
    value: str
    confidence: float


@dataclass
class ParsedCard:
    fields: dict[str, FieldValue]
    # Where each labelled row was found: its label box and its value boxes.
    label_boxes: dict[str, OcrLine]
    value_boxes: dict[str, list[OcrLine]]
    # The "PROVINSI ..." header line, when found.
    header: OcrLine | None


@dataclass
class _Row:
    boxes: list[OcrLine]

    @property
    def centre_y(self) -> float:
        return sum(b.centre_y for b in self.boxes) / len(self.boxes)

    @property
    def height(self) -> float:
        return sum(b.height for b in self.boxes) / len(self.boxes)


def _letters(text: str) -> str:
    return re.sub(r"[^A-Z]", "", text.upper())


def _clean(text: str) -> str:
    """Upper case, one space between words, no leading separator."""
    text = re.sub(r"\s+", " ", text.upper()).strip()
    return text.lstrip(":;.,=- ").strip()


def _snap(text: str, vocabulary: Sequence[str], cutoff: float = 0.6) -> str | None:
    """The vocabulary entry closest to the text, or to its leading words
    (stray text may follow the value on the same row)."""
    words = text.split()
    for count in range(len(words), 0, -1):
        match = difflib.get_close_matches(" ".join(words[:count]), vocabulary, n=1, cutoff=cutoff)
        if match:
            return match[0]
    return None


def digits_only(text: str) -> str:
    return re.sub(r"\D", "", text.translate(_DIGIT_LOOKALIKES))


def normalise_date(text: str) -> str | None:
    """DD-MM-YYYY from a printed date with OCR noise, or None."""
    fixed = re.sub(r"[^0-9\-./ ]", "", text.translate(_DIGIT_LOOKALIKES))
    match = _DATE.search(fixed)
    if match:
        day, month, year = match.groups()
        return f"{int(day):02d}-{int(month):02d}-{year}"
    digits = re.sub(r"\D", "", fixed)
    if len(digits) == 8:
        return f"{digits[0:2]}-{digits[2:4]}-{digits[4:8]}"
    return None


def _group_rows(lines: Sequence[OcrLine]) -> list[_Row]:
    rows: list[_Row] = []
    for line in sorted(lines, key=lambda item: item.centre_y):
        for row in rows:
            if abs(row.centre_y - line.centre_y) <= 0.5 * max(row.height, line.height):
                row.boxes.append(line)
                break
        else:
            rows.append(_Row([line]))
    for row in rows:
        row.boxes.sort(key=lambda box: box.left)
    return rows


def match_label(text: str) -> tuple[str, int] | None:
    """(field, number of leading letters the label used) for a row's text."""
    letters = _letters(text)
    best: tuple[float, str, int] | None = None
    for label, field in LABELS.items():
        # Compare with the row's prefix of the same length, allowing for an
        # OCR-dropped or doubled letter.
        for extra in (0, -1, 1):
            size = len(label) + extra
            if size <= 0 or size > len(letters):
                continue
            ratio = difflib.SequenceMatcher(None, label, letters[:size]).ratio()
            threshold = 1.0 if len(label) <= 3 else 0.8
            if ratio >= threshold and (
                best is None or ratio > best[0] or (ratio == best[0] and size > best[2])
            ):
                best = (ratio, field, size)
    return (best[1], best[2]) if best else None


def _split_label(row: _Row) -> tuple[str, str, list[OcrLine]] | None:
    """(field, value text, value boxes) of a labelled row."""
    first = row.boxes[0]
    head, colon, tail = first.text.partition(":")
    matched = match_label(head)
    if matched is None:
        return None
    field, _ = matched
    if colon and tail.strip():
        # "Label : value" in one box.
        return field, " ".join([tail] + [b.text for b in row.boxes[1:]]), row.boxes
    if not colon and len(_letters(head)) > matched[1] + 1 and len(row.boxes) == 1:
        # "Label value" without a readable colon: drop the label's letters.
        letter_positions = [i for i, char in enumerate(head) if char.isalpha()]
        end = letter_positions[matched[1] - 1] + 1
        return field, head[end:], row.boxes
    return field, " ".join(b.text for b in row.boxes[1:]), row.boxes[1:] or row.boxes


def _continues_value(row: _Row, value_boxes: Sequence[OcrLine]) -> bool:
    """An unlabelled row starting where the previous row's value started."""
    if not value_boxes:
        return False
    start = value_boxes[0].left
    return abs(row.boxes[0].left - start) <= 0.6 * value_boxes[0].height + 12


def _confidence(boxes: Sequence[OcrLine]) -> float:
    return min((b.confidence for b in boxes), default=0.0)


def _put(
    fields: dict[str, FieldValue], name: str, value: str | None, boxes: Sequence[OcrLine]
) -> None:
    if value:
        fields[name] = FieldValue(value, _confidence(boxes))


def _parse_birth(text: str, boxes: Sequence[OcrLine], fields: dict[str, FieldValue]) -> None:
    date = normalise_date(text)
    place = text
    match = _DATE.search(re.sub(r"[^0-9A-Za-z\-./ ,]", "", text))
    if match:
        place = text[: match.start()]
    else:
        place = re.split(r"[,\d]", text, maxsplit=1)[0]
    _put(fields, BIRTH_PLACE, _clean(place).rstrip(",. ") or None, boxes)
    _put(fields, BIRTH_DATE, date, boxes)


def _parse_gender_row(
    row: _Row, value: str, boxes: list[OcrLine], fields: dict[str, FieldValue]
) -> None:
    # "PEREMPUAN  Gol. Darah : A": the blood type shares the row.
    blood_boxes = [
        b for b in boxes if "DARAH" in b.text.upper() or _letters(b.text).startswith("GOL")
    ]
    gender_boxes = [b for b in boxes if b not in blood_boxes] or boxes
    joined = value.upper()
    split = re.search(r"G\s*[O0]\s*L\W*\s*D\s*A\s*R\s*A\s*H", joined)
    gender_text = joined[: split.start()] if split else joined
    gender = _snap(
        _clean(gender_text).replace(" ", ""),
        [g.replace("-", "") for g in GENDERS] + list(GENDERS),
        0.5,
    )
    if gender:
        gender = "LAKI-LAKI" if gender.startswith("LAKI") else "PEREMPUAN"
    _put(fields, GENDER, gender, gender_boxes)
    if split:
        blood = _clean(joined[split.end() :]).replace(" ", "").replace("0", "O")
        blood_type = blood if blood in BLOOD_TYPES else _snap(blood, BLOOD_TYPES, 0.5)
        _put(fields, BLOOD_TYPE, blood_type or "-", blood_boxes or boxes)


def _parse_value(
    field: str, value: str, boxes: list[OcrLine], fields: dict[str, FieldValue]
) -> None:
    text = _clean(value)
    if field == NIK:
        _put(fields, NIK, digits_only(value), boxes)
    elif field == BIRTH_PLACE:
        _parse_birth(text, boxes, fields)
    elif field == RT_RW:
        groups = re.findall(r"\d+", re.sub(r"[^0-9/ ]", " ", value.translate(_DIGIT_LOOKALIKES)))
        if len(groups) == 1 and len(groups[0]) in (6, 7):
            # The slash was lost (6 digits) or read as a 1 (7 digits).
            groups = [groups[0][:3], groups[0][-3:]]
        rt_rw = f"{int(groups[0]):03d}/{int(groups[1]):03d}" if len(groups) == 2 else None
        _put(fields, RT_RW, rt_rw, boxes)
    elif field == RELIGION:
        _put(fields, RELIGION, _snap(text, RELIGIONS) or text, boxes)
    elif field == MARITAL_STATUS:
        _put(fields, MARITAL_STATUS, _snap(text, MARITAL_STATUSES) or text, boxes)
    elif field == NATIONALITY:
        _put(fields, NATIONALITY, _snap(text.replace(" ", ""), NATIONALITIES, 0.5) or text, boxes)
    elif field == VALID_UNTIL:
        for_life = _snap(text, (FOR_LIFE,), 0.7)
        _put(fields, VALID_UNTIL, for_life or normalise_date(text) or text, boxes)
    elif field == BLOOD_TYPE:
        blood = text.replace(" ", "").replace("0", "O")
        _put(
            fields,
            BLOOD_TYPE,
            blood if blood in BLOOD_TYPES else (_snap(blood, BLOOD_TYPES, 0.5) or "-"),
            boxes,
        )
    else:
        _put(fields, field, text, boxes)


def _parse_header(rows: list[_Row], fields: dict[str, FieldValue]) -> OcrLine | None:
    """'PROVINSI <name>' then the regency line ('KABUPATEN x', 'KOTA x', or a
    DKI city such as 'JAKARTA SELATAN')."""
    for index, row in enumerate(rows):
        text = _clean(" ".join(b.text for b in row.boxes))
        letters = _letters(text)
        if difflib.SequenceMatcher(None, "PROVINSI", letters[:8]).ratio() >= 0.75:
            name = text.split(" ", 1)[1] if " " in text else text[8:]
            _put(fields, PROVINCE, _clean(name), row.boxes)
            if index + 1 < len(rows):
                following = rows[index + 1]
                candidate = _clean(" ".join(b.text for b in following.boxes))
                if candidate and match_label(candidate) is None:
                    _put(fields, REGENCY, candidate, following.boxes)
            return row.boxes[0]
    return None


def parse_fields(lines: Sequence[OcrLine], card_width: float) -> dict[str, FieldValue]:
    """Fields read from OCR lines of a rectified card `card_width` pixels wide."""
    return parse_card(lines, card_width).fields


def parse_card(lines: Sequence[OcrLine], card_width: float) -> ParsedCard:
    """Fields and where they were found, from OCR lines of a rectified card."""
    main = [line for line in lines if line.left < _PORTRAIT_COLUMN * card_width]
    side = [line for line in lines if line.left >= _PORTRAIT_COLUMN * card_width]
    rows = _group_rows(main)
    fields: dict[str, FieldValue] = {}
    label_boxes: dict[str, OcrLine] = {}
    value_boxes: dict[str, list[OcrLine]] = {}
    first_labelled = len(rows)
    previous: str | None = None
    for index, row in enumerate(rows):
        split = _split_label(row)
        if split is None:
            if (
                previous in WRAPPING_FIELDS
                and previous in fields
                and _continues_value(row, value_boxes[previous])
            ):
                # A long name or address wraps onto an unlabelled line.
                extra = _clean(" ".join(b.text for b in row.boxes))
                boxes = value_boxes[previous] + row.boxes
                fields[previous] = FieldValue(
                    f"{fields[previous].value} {extra}", _confidence(boxes)
                )
                value_boxes[previous] = boxes
            previous = None
            continue
        first_labelled = min(first_labelled, index)
        field, value, boxes = split
        if field not in label_boxes:
            label_boxes[field] = row.boxes[0]
            value_boxes[field] = [b for b in boxes if b is not row.boxes[0]]
        if field == GENDER:
            _parse_gender_row(row, value, boxes, fields)
        elif field not in fields:
            _parse_value(field, value, boxes, fields)
        previous = field
    header = _parse_header(rows[:first_labelled], fields)
    # Under the portrait: the place and date of issue.
    for row in _group_rows(side):
        text = _clean(" ".join(b.text for b in row.boxes))
        date = normalise_date(text)
        if date and ISSUE_DATE not in fields:
            _put(fields, ISSUE_DATE, date, row.boxes)
        elif not date and _letters(text) and ISSUE_PLACE not in fields:
            _put(fields, ISSUE_PLACE, text, row.boxes)
    return ParsedCard(fields, label_boxes, value_boxes, header)
