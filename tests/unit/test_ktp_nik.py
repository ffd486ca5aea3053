"""NIK structural validation: examples, the new Papua provinces, retired codes,
and property tests (valid NIKs round-trip; every single-rule violation is caught)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lokal import wilayah

from identity_ktp import nik as n
from identity_ktp.regions import RegionIndex, default_index

TODAY = dt.date(2026, 1, 15)
REGIONS = default_index()

# (province code, regency code) pairs of the current dataset.
REGENCIES = sorted(
    (code.split(".")[0], code.split(".")[1])
    for province in wilayah.list_wilayah()
    for code in (r.code for r in wilayah.list_wilayah(province.code))
)
PROVINCE_CODES = {p.code for p in wilayah.list_wilayah()}
UNKNOWN_PROVINCES = sorted(f"{i:02d}" for i in range(100) if f"{i:02d}" not in PROVINCE_CODES)


def make_nik(
    province: str, regency: str, district: str, born: dt.date, female: bool, serial: int
) -> str:
    day = born.day + (40 if female else 0)
    return (
        f"{province}{regency}{district}{day:02d}{born.month:02d}{born.year % 100:02d}{serial:04d}"
    )


def test_dev_ktp_nik_is_a_woman_born_1_july_1995_in_kota_bandung() -> None:
    check = n.validate_nik("3273024107950003", today=TODAY)
    assert check.valid and check.reasons == ()
    assert (check.province_name, check.regency_name, check.district_name) == (
        "Jawa Barat",
        "Kota Bandung",
        "Coblong",
    )
    assert check.birth_date == dt.date(1995, 7, 1)
    assert check.gender == n.FEMALE


def test_same_date_without_the_offset_is_a_man() -> None:
    check = n.validate_nik("3273020107950003", today=TODAY)
    assert check.valid and check.gender == n.MALE and check.birth_date == dt.date(1995, 7, 1)


@pytest.mark.parametrize(
    ("province", "name", "regency", "regency_name"),
    [
        ("93", "Papua Selatan", "01", "Kabupaten Merauke"),
        ("94", "Papua Tengah", "01", "Kabupaten Nabire"),
        ("95", "Papua Pegunungan", "01", "Kabupaten Jayawijaya"),
        ("96", "Papua Barat Daya", "71", "Kota Sorong"),
    ],
)
def test_the_four_papua_provinces_of_2022_are_known(
    province: str, name: str, regency: str, regency_name: str
) -> None:
    check = n.validate_nik(f"{province}{regency}011507900001", today=TODAY)
    assert check.valid, check.reasons
    assert check.province_name == name and check.regency_name == regency_name
    assert check.regency_current_code == ""


@pytest.mark.parametrize(
    ("old", "current", "name"),
    [
        ("9101", "9301", "Kabupaten Merauke"),
        ("9201", "9601", "Kabupaten Sorong"),
        ("6473", "6571", "Kota Tarakan"),
    ],
)
def test_a_nik_issued_before_a_province_split_keeps_its_retired_code(
    old: str, current: str, name: str
) -> None:
    check = n.validate_nik(f"{old}011507900001", today=TODAY)
    assert check.valid, check.reasons
    assert check.regency_current_code == current and check.regency_name == name


def test_retired_codes_are_absent_today_and_point_at_existing_regencies() -> None:
    for old, current in REGIONS.retired_codes().items():
        assert wilayah.wilayah_name(old) is None, old
        assert wilayah.wilayah_name(current), current
        assert old[:2] != current[:2]


def test_region_dataset_is_verified_against_its_pinned_hash(monkeypatch) -> None:
    from identity_ktp import regions

    monkeypatch.setattr(regions, "DATASET_SHA256", "0" * 64)
    with pytest.raises(regions.RegionDatasetError, match="differs from the pinned"):
        RegionIndex()


@pytest.mark.parametrize(
    ("nik", "rules"),
    [
        ("327302410795000", {n.NIK_LENGTH}),
        ("32730241079500031", {n.NIK_LENGTH}),
        ("", {n.NIK_LENGTH, n.NIK_NOT_NUMERIC}),
        ("3273024107950O03", {n.NIK_NOT_NUMERIC}),
        ("３２７３０２４１０７９５０００３", {n.NIK_NOT_NUMERIC}),  # full-width digits
        ("9973024107950003", {n.NIK_PROVINCE_UNKNOWN}),
        ("3299024107950003", {n.NIK_REGENCY_UNKNOWN}),
        ("3273023207950003", {n.NIK_BIRTH_DATE_INVALID}),  # day 32
        ("3273027207950003", {n.NIK_BIRTH_DATE_INVALID}),  # day 72 (32 + 40)
        ("3273020013950003", {n.NIK_BIRTH_DATE_INVALID}),  # day 00, month 13
        ("3273023002950003", {n.NIK_BIRTH_DATE_INVALID}),  # 30 February
        ("3273022902010003", {n.NIK_BIRTH_DATE_INVALID}),  # 29 February 2001
        ("3273024107950000", {n.NIK_SERIAL_ZERO}),
        ("9999997207950000", {n.NIK_PROVINCE_UNKNOWN, n.NIK_BIRTH_DATE_INVALID, n.NIK_SERIAL_ZERO}),
    ],
)
def test_failing_rules_are_all_reported(nik: str, rules: set[str]) -> None:
    check = n.validate_nik(nik, today=TODAY)
    assert not check.valid
    assert set(check.reasons) == rules


def test_29_february_of_a_leap_year_is_valid() -> None:
    assert n.validate_nik("3273026902000003", today=TODAY).birth_date == dt.date(2000, 2, 29)


def test_the_century_is_the_most_recent_one_not_in_the_future() -> None:
    assert n.validate_nik("3273021501250003", today=TODAY).birth_date == dt.date(2025, 1, 15)
    assert n.validate_nik("3273021501270003", today=TODAY).birth_date == dt.date(1927, 1, 15)


def test_the_nik_never_appears_in_the_result(caplog) -> None:
    nik = "3273024107950003"
    with caplog.at_level(logging.DEBUG):
        check = n.validate_nik(nik, today=TODAY)
    assert nik not in repr(check) and nik not in str(check)
    assert nik not in caplog.text


# --- property tests -------------------------------------------------------

regency_codes = st.sampled_from(REGENCIES)
dates = st.dates(min_value=dt.date(TODAY.year - 99, 1, 1), max_value=TODAY)
serials = st.integers(min_value=1, max_value=9999)
districts = st.integers(min_value=1, max_value=99).map(lambda d: f"{d:02d}")


@st.composite
def valid_niks(draw) -> tuple[str, tuple[str, str], dt.date, bool]:
    province, regency = draw(regency_codes)
    born, female = draw(dates), draw(st.booleans())
    return (
        make_nik(province, regency, draw(districts), born, female, draw(serials)),
        (province, regency),
        born,
        female,
    )


@settings(max_examples=300, deadline=None)
@given(valid_niks())
def test_every_generated_valid_nik_round_trips(case) -> None:
    nik, (province, regency), born, female = case
    check = n.validate_nik(nik, today=TODAY)
    assert check.valid, check.reasons
    assert check.province_code == province and check.regency_code == province + regency
    assert check.birth_date == born
    assert check.gender == (n.FEMALE if female else n.MALE)


def _break_length(nik: str, data) -> str:
    if data.draw(st.booleans()):
        return (
            nik[: data.draw(st.integers(min_value=1, max_value=15))]
            if data.draw(st.booleans())
            else nik[:-1]
        )
    return nik + data.draw(st.text(alphabet="0123456789", min_size=1, max_size=4))


def _break_numeric(nik: str, data) -> str:
    index = data.draw(st.integers(min_value=0, max_value=15))
    char = data.draw(
        st.characters(
            blacklist_categories=("Nd",),
            blacklist_characters="\t\n\x0b\x0c\r \x1c\x1d\x1e\x1f\x85\xa0",
        )
    )
    return nik[:index] + char + nik[index + 1 :]


def _break_province(nik: str, data) -> str:
    return data.draw(st.sampled_from(UNKNOWN_PROVINCES)) + nik[2:]


def _break_regency(nik: str, data) -> str:
    province = nik[:2]
    known = {r for p, r in REGENCIES if p == province} | {
        old[3:] for old in REGIONS.retired_codes() if old[:2] == province
    }
    unknown = [f"{i:02d}" for i in range(100) if f"{i:02d}" not in known]
    return province + data.draw(st.sampled_from(unknown)) + nik[4:]


def _break_birth_date(nik: str, data) -> str:
    day, month = int(nik[6:8]), int(nik[8:10])
    female = day > 40
    choice = data.draw(st.sampled_from(["day", "month", "calendar"]))
    if choice == "day":
        bad_day = data.draw(st.sampled_from([0, 32, 33, 39, 40, 72, 80, 99]))
        return nik[:6] + f"{bad_day:02d}" + nik[8:]
    if choice == "month":
        return nik[:8] + f"{data.draw(st.sampled_from([0, 13, 20, 99])):02d}" + nik[10:]
    # A day past the end of a 30-day month (or 30 February).
    month = data.draw(st.sampled_from([2, 4, 6, 9, 11]))
    day = 30 if month == 2 else 31
    return nik[:6] + f"{day + (40 if female else 0):02d}{month:02d}" + nik[10:]


def _break_serial(nik: str, data) -> str:
    return nik[:12] + "0000"


BREAKERS = {
    n.NIK_LENGTH: _break_length,
    n.NIK_NOT_NUMERIC: _break_numeric,
    n.NIK_PROVINCE_UNKNOWN: _break_province,
    n.NIK_REGENCY_UNKNOWN: _break_regency,
    n.NIK_BIRTH_DATE_INVALID: _break_birth_date,
    n.NIK_SERIAL_ZERO: _break_serial,
}


def test_every_rule_has_a_breaker() -> None:
    assert set(BREAKERS) == set(n.ALL_RULES)


@settings(max_examples=400, deadline=None)
@given(valid_niks(), st.sampled_from(sorted(BREAKERS)), st.data())
def test_every_single_rule_violation_is_caught_alone(case, rule: str, data) -> None:
    nik = case[0]
    broken = BREAKERS[rule](nik, data)
    check = n.validate_nik(broken, today=TODAY)
    assert not check.valid
    assert check.reasons == (rule,)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=24))
def test_arbitrary_text_never_raises_and_never_leaks(text: str) -> None:
    check = n.validate_nik(text, today=TODAY)
    assert check.valid == (not check.reasons)
    if len(text.strip()) == 16 and text.strip().isdigit() and text.strip().isascii():
        assert n.NIK_LENGTH not in check.reasons


@pytest.mark.parametrize(
    ("instant", "wib_day"),
    [
        (dt.datetime(2026, 11, 26, 16, 59, 59, tzinfo=dt.UTC), dt.date(2026, 11, 26)),
        # From 17:00 UTC it is already the next day in Jakarta.
        (dt.datetime(2026, 11, 26, 17, 0, tzinfo=dt.UTC), dt.date(2026, 11, 27)),
        (dt.datetime(2026, 12, 31, 18, 30, tzinfo=dt.UTC), dt.date(2027, 1, 1)),
    ],
)
def test_a_ktp_date_is_the_wib_date_of_the_instant(instant: dt.datetime, wib_day: dt.date) -> None:
    assert n.wib_date(instant) == wib_day
