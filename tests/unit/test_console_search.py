"""The console's search tokens, masks and CSV cell neutralisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from identity_platform_api.kyc_tier.v1 import dashboard_pb2
from identity_runtime.errors import InvalidArgument
from identity_runtime.validation import validate
from services.kyc_tier import export, search
from services.kyc_tier.search_index import normalised_tokens, tokens_of


def test_tokens_are_folded_lower_case_words_of_name_and_email() -> None:
    assert normalised_tokens("Dewi  SARTIKA-Ñoño") == ["dewi", "sartika", "nono"]
    assert tokens_of("Siti Rahayu", "siti.r@Bank.example") == {
        "siti",
        "rahayu",
        "r",
        "bank",
        "example",
    }
    assert tokens_of("", "") == set()


@pytest.mark.parametrize(
    ("q", "kind"),
    [("3273024107950003", "nik"), ("siti@bank.example", "email"), ("Siti Rah", "name")],
)
def test_query_kinds(q: str, kind: str) -> None:
    assert search.query_kind(q) == kind


@pytest.mark.parametrize("q", ["", "a", "x" * 201, "--", " ".join(["w"] * 9)])
def test_bad_queries_are_refused(q: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        search.query_kind(q)
    assert caught.value.metadata["field"] == "q"


@pytest.mark.parametrize("length", [201, 256, 257])
def test_the_contract_and_the_search_refuse_the_same_long_query_alike(length: int) -> None:
    """One rule, 2 to 200 characters: the layer every request passes first
    (gateway and service) says the search's own limit, not a name's 256."""
    q = "x" * length
    with pytest.raises(InvalidArgument) as contract:
        validate(dashboard_pb2.SearchCustomersRequest(q=q))
    with pytest.raises(InvalidArgument) as domain:
        search.query_kind(q)
    assert contract.value.metadata["field"] == domain.value.metadata["field"] == "q"
    assert "at most 200 characters" in contract.value.message
    assert "2 to 200 characters" in domain.value.message
    validate(dashboard_pb2.SearchCustomersRequest(q="x" * 200))
    assert search.query_kind("x" * 200) == "name"


def test_masks_keep_only_first_letters_and_last_digits() -> None:
    assert search.mask_name("Siti  Rahayu") == "S*** R*****"
    assert search.mask_email("siti@bank.example") == "s***@bank.example"
    assert search.mask_phone("+6281234567890") == "***********890"
    assert search.mask_phone("") == search.mask_email("") == search.mask_name("") == ""


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Siti", "Siti"),
        (None, ""),
        (3, "3"),
    ],
)
def test_formula_cells_are_neutralised(cell: object, safe: str) -> None:
    assert export.neutralise(cell) == safe


def test_export_bounds() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert export.bounds(start, start + timedelta(days=366)) == (start, start + timedelta(days=366))
    for after, before, field in (
        (None, start, "created_after"),
        (start, None, "created_before"),
        (start, start, "created_before"),
        (start, start + timedelta(days=367), "created_before"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            export.bounds(after, before)
        assert caught.value.metadata["field"] == field


def test_times_are_written_in_jakarta() -> None:
    assert export.jakarta(datetime(2026, 11, 26, 1, 0, tzinfo=UTC)) == "2026-11-26T08:00:00+07:00"
