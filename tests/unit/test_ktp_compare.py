"""KTP field comparison: every accepted submission format matches the card's
printed value; a field not submitted (or not read) is never a mismatch."""

from __future__ import annotations

import pytest

from identity_ktp import compare

MIN = 0.85


@pytest.mark.parametrize(
    ("name", "submitted", "printed"),
    [
        ("birth_date", "1995-07-01", "01-07-1995"),
        ("birth_date", "01-07-1995", "01-07-1995"),
        ("birth_date", "1/7/1995", "01-07-1995"),
        ("birth_date", "1995.07.01", "01-07-1995"),
        ("issue_date", "2020-03-09", "09-03-2020"),
        ("valid_until", "lifetime", "SEUMUR HIDUP"),
        ("valid_until", "2030-01-31", "31-01-2030"),
        ("gender", "male", "LAKI-LAKI"),
        ("gender", "MALE", "LAKI-LAKI"),
        ("gender", "Laki laki", "LAKI-LAKI"),
        ("gender", "female", "PEREMPUAN"),
        ("gender", "P", "PEREMPUAN"),
        ("gender", "perempuan", "PEREMPUAN"),
        ("nik", "3273 0241 0795 0003", "3273024107950003"),
        ("nik", "3273-0241-0795-0003", "3273024107950003"),
        ("name", "siti  rahayu", "SITI RAHAYU"),
        ("name", "Siti Rahayu.", "SITI RAHAYU"),
        ("address", "Jl. Merdeka No. 5", "JL MERDEKA NO 5"),
        ("rt_rw", "003/012", "003 / 012"),
    ],
)
def test_every_accepted_format_matches(name: str, submitted: str, printed: str) -> None:
    result = compare.compare_field(name, submitted, printed, MIN)
    assert (result.status, result.score) == (compare.MATCH, 1.0)


@pytest.mark.parametrize(
    ("name", "submitted", "printed"),
    [
        ("birth_date", "1995-07-02", "01-07-1995"),
        ("birth_date", "1995-01-07", "01-07-1995"),  # day and month swapped
        ("birth_date", "not a date", "01-07-1995"),
        ("gender", "female", "LAKI-LAKI"),
        ("gender", "unknown", "LAKI-LAKI"),
        ("nik", "3273024107950004", "3273024107950003"),
        ("name", "Budi Santoso", "SITI RAHAYU"),
    ],
)
def test_real_differences_are_mismatches(name: str, submitted: str, printed: str) -> None:
    result = compare.compare_field(name, submitted, printed, MIN)
    assert result.status == compare.MISMATCH and result.compared
    assert result.score is not None and result.score < MIN


@pytest.mark.parametrize("submitted", [None, "", "   "])
def test_a_field_not_submitted_is_not_compared(submitted: str | None) -> None:
    result = compare.compare_field("issue_place", submitted, "BANDUNG", MIN)
    assert (result.status, result.score, result.compared) == (compare.NOT_SUBMITTED, None, False)


def test_a_field_not_read_is_not_compared() -> None:
    result = compare.compare_field("issue_date", "2020-03-09", None, MIN)
    assert (result.status, result.score) == (compare.NOT_READ, None)


def test_every_field_on_either_side_is_reported_once() -> None:
    results = compare.compare_fields(
        {"birth_date": "1995-07-01", "gender": "female", "occupation": ""},
        {"birth_date": "01-07-1995", "gender": "PEREMPUAN", "issue_place": "BANDUNG"},
        MIN,
    )
    assert {r.name: (r.status, r.score) for r in results} == {
        "birth_date": (compare.MATCH, 1.0),
        "gender": (compare.MATCH, 1.0),
        "issue_place": (compare.NOT_SUBMITTED, None),
        "occupation": (compare.NOT_SUBMITTED, None),
    }
