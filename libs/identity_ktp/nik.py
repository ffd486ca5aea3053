"""Structural validation of the NIK (Nomor Induk Kependudukan).

    PP KK CC DDMMYY SSSS
    province, regency/city, district, birth date (day + 40 for women), serial

A structurally valid NIK is not proof that it was issued: only Dukcapil
knows that. The NIK is never put in a log, an exception or a repr: results
carry the decoded parts, not the number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from identity_ktp.regions import RegionIndex, default_index

# Failing rules, as reported in NikValidation.reasons.
NIK_LENGTH = "NIK_LENGTH"
NIK_NOT_NUMERIC = "NIK_NOT_NUMERIC"
NIK_PROVINCE_UNKNOWN = "NIK_PROVINCE_UNKNOWN"
NIK_REGENCY_UNKNOWN = "NIK_REGENCY_UNKNOWN"
NIK_BIRTH_DATE_INVALID = "NIK_BIRTH_DATE_INVALID"
NIK_SERIAL_ZERO = "NIK_SERIAL_ZERO"

ALL_RULES = (
    NIK_LENGTH,
    NIK_NOT_NUMERIC,
    NIK_PROVINCE_UNKNOWN,
    NIK_REGENCY_UNKNOWN,
    NIK_BIRTH_DATE_INVALID,
    NIK_SERIAL_ZERO,
)

RULE_MESSAGES = {
    NIK_LENGTH: "a NIK has exactly 16 digits",
    NIK_NOT_NUMERIC: "a NIK has digits only",
    NIK_PROVINCE_UNKNOWN: "the province code is not a Kemendagri province",
    NIK_REGENCY_UNKNOWN: "the regency/city code is not known in its province",
    NIK_BIRTH_DATE_INVALID: "the birth date (day + 40 for women) is not a real date",
    NIK_SERIAL_ZERO: "the serial number is 0000",
}

# A KTP's dates are local dates: Indonesia's western time (WIB, UTC+7), the
# Dukcapil's reference. From 17:00 UTC the WIB date is a day ahead.
JAKARTA = ZoneInfo("Asia/Jakarta")

FEMALE = "female"
MALE = "male"
FEMALE_DAY_OFFSET = 40


@dataclass(frozen=True)
class NikCheck:
    """What a NIK encodes and which structural rules it fails. Holds no NIK."""

    valid: bool
    reasons: tuple[str, ...] = ()
    province_code: str = ""
    province_name: str = ""
    regency_code: str = ""
    regency_name: str = ""
    # Set when the regency code was retired by a province split (still valid).
    regency_current_code: str = ""
    district_code: str = ""
    district_name: str = ""
    birth_date: dt.date | None = None
    gender: str = ""


def wib_date(at: dt.datetime) -> dt.date:
    """The WIB (Asia/Jakarta) date of an aware instant: the date a KTP is read against."""
    return at.astimezone(JAKARTA).date()


def birth_year(two_digits: int, today: dt.date) -> int:
    """The century is not encoded: the most recent year not in the future."""
    year = 2000 + two_digits
    return year if year <= today.year else year - 100


def decode_birth(digits: str, today: dt.date) -> tuple[dt.date | None, str]:
    """(birth date or None when not a real date, gender) from DDMMYY."""
    day, month, yy = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    gender = FEMALE if day > FEMALE_DAY_OFFSET else MALE
    if gender == FEMALE:
        day -= FEMALE_DAY_OFFSET
    try:
        born = dt.date(birth_year(yy, today), month, day)
    except ValueError:
        return None, gender
    if born > today:
        return None, gender
    return born, gender


def validate_nik(
    nik: str, *, today: dt.date | None = None, regions: RegionIndex | None = None
) -> NikCheck:
    """Check every structural rule; all failing rules are reported.

    `today` is the WIB date the birth date is judged against (callers pass
    `wib_date(clock())`); by default the WIB date of the current instant.

    Surrounding whitespace is ignored; anything else that is not a digit
    fails NIK_NOT_NUMERIC. When the length or the characters are wrong the
    other rules cannot be read and are not reported.
    """
    today = today or wib_date(dt.datetime.now(dt.UTC))
    regions = regions or default_index()
    text = nik.strip()
    reasons: list[str] = []
    if len(text) != 16:
        reasons.append(NIK_LENGTH)
    if not (text.isascii() and text.isdigit()):
        reasons.append(NIK_NOT_NUMERIC)
    if reasons:
        return NikCheck(valid=False, reasons=tuple(reasons))

    pp, kk, cc = text[0:2], text[2:4], text[4:6]
    # The NikCheck fields this NIK encodes, by name.
    check: dict[str, Any] = {
        "province_code": pp,
        "regency_code": pp + kk,
        "district_code": pp + kk + cc,
    }
    province = regions.province(pp)
    if province is None:
        reasons.append(NIK_PROVINCE_UNKNOWN)
    else:
        check["province_name"] = province.name
        regency = regions.regency(pp, kk)
        if regency is None:
            reasons.append(NIK_REGENCY_UNKNOWN)
        else:
            check["regency_name"] = regency.name
            check["regency_current_code"] = (regency.current_code or "").replace(".", "")
            district = regions.district(pp, kk, cc)
            if district is not None:
                check["district_name"] = district.name
    born, gender = decode_birth(text[6:12], today)
    if born is None:
        reasons.append(NIK_BIRTH_DATE_INVALID)
    else:
        check["birth_date"] = born
        check["gender"] = gender
    if text[12:16] == "0000":
        reasons.append(NIK_SERIAL_ZERO)
    return NikCheck(valid=not reasons, reasons=tuple(reasons), **check)
