"""Comparison of partner-submitted KTP fields with the card's OCR reading.

Formats accepted for the submitted values (documented in `KtpOcrFields`,
protos/identity/kyc_tier/v1/ktp.proto):

- dates (`birth_date`, `issue_date`, `valid_until` when it is a date): ISO
  8601 `YYYY-MM-DD` or the card's `DD-MM-YYYY` (`/`, `.` or spaces also
  separate); `valid_until` may also be `SEUMUR HIDUP` / `lifetime`;
- gender: `male` / `female` (English, any case), `LAKI-LAKI` / `LAKI LAKI` /
  `L`, `PEREMPUAN` / `P`;
- NIK: the 16 digits, with or without spaces, dots or dashes;
- every other field: compared after upper-casing, folding punctuation and
  runs of whitespace into one space, by similarity (difflib ratio); it
  matches at `min_similarity` (the KTP thresholds' `field_similarity_min`).

A field the partner did not submit (missing or blank) is NOT_SUBMITTED and a
field the server could not read is NOT_READ: neither is compared, and neither
is ever a mismatch. Only MATCH and MISMATCH carry a score.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from identity_ktp import fields as f

MATCH, MISMATCH = "match", "mismatch"
NOT_SUBMITTED, NOT_READ = "not_submitted", "not_read"

DATE_FIELDS = (f.BIRTH_DATE, f.ISSUE_DATE, f.VALID_UNTIL)
_ISO_DATE = re.compile(r"^\s*(\d{4})\s*[-./ ]\s*(\d{1,2})\s*[-./ ]\s*(\d{1,2})\s*$")
_CARD_DATE = re.compile(r"^\s*(\d{1,2})\s*[-./ ]\s*(\d{1,2})\s*[-./ ]\s*(\d{4})\s*$")
_LIFETIME = {"SEUMUR HIDUP", "LIFETIME"}
_GENDERS = {
    "MALE": "LAKI-LAKI",
    "M": "LAKI-LAKI",
    "L": "LAKI-LAKI",
    "LAKI LAKI": "LAKI-LAKI",
    "LAKILAKI": "LAKI-LAKI",
    "FEMALE": "PEREMPUAN",
    "F": "PEREMPUAN",
    "P": "PEREMPUAN",
    "PEREMPUAN": "PEREMPUAN",
}


@dataclass(frozen=True)
class FieldComparison:
    """One field: its status and, when compared, a similarity score in [0, 1]."""

    name: str
    status: str
    score: float | None = None

    @property
    def compared(self) -> bool:
        return self.status in (MATCH, MISMATCH)


def plain(text: str) -> str:
    """Upper case, punctuation and whitespace runs folded to one space."""
    return re.sub(r"[^A-Z0-9]+", " ", text.upper()).strip()


def normalise_submitted_date(text: str) -> str | None:
    """DD-MM-YYYY from an ISO or a DD-MM-YYYY date, or None when it is neither."""
    iso = _ISO_DATE.match(text)
    if iso:
        year, month, day = iso.groups()
    else:
        card = _CARD_DATE.match(text)
        if not card:
            return None
        day, month, year = card.groups()
    if not (1 <= int(day) <= 31 and 1 <= int(month) <= 12):
        return None
    return f"{int(day):02d}-{int(month):02d}-{year}"


def normalise_gender(text: str) -> str | None:
    return _GENDERS.get(plain(text)) or _GENDERS.get(plain(text).replace(" ", ""))


def _date_value(text: str, printed: bool) -> str | None:
    if plain(text) in _LIFETIME:
        return "SEUMUR HIDUP"
    return f.normalise_date(text) if printed else normalise_submitted_date(text)


def similarity(name: str, submitted: str, read: str) -> float:
    """1.0 for the same value in any accepted format; fuzzy for free text."""
    if name in DATE_FIELDS:
        mine, theirs = _date_value(submitted, False), _date_value(read, True)
        return 1.0 if mine is not None and mine == theirs else 0.0
    if name == f.NIK:
        return 1.0 if f.digits_only(submitted) == f.digits_only(read) else 0.0
    if name == f.GENDER:
        mine_g, theirs_g = normalise_gender(submitted), normalise_gender(read)
        return 1.0 if mine_g is not None and mine_g == theirs_g else 0.0
    return difflib.SequenceMatcher(None, plain(submitted), plain(read)).ratio()


def compare_field(
    name: str, submitted: str | None, read: str | None, min_similarity: float
) -> FieldComparison:
    if not submitted or not submitted.strip():
        return FieldComparison(name, NOT_SUBMITTED)
    if read is None or not read.strip():
        return FieldComparison(name, NOT_READ)
    score = round(similarity(name, submitted, read), 4)
    return FieldComparison(name, MATCH if score >= min_similarity else MISMATCH, score)


def compare_fields(
    submitted: Mapping[str, str], read: Mapping[str, str], min_similarity: float
) -> list[FieldComparison]:
    """Every field either side has, by name."""
    names = sorted(set(submitted) | set(read))
    return [compare_field(n, submitted.get(n), read.get(n), min_similarity) for n in names]
