"""Client-supplied text that once raised past the error layer (a 500): URLs
urlsplit cannot split, JSON nested past the recursion limit."""

from __future__ import annotations

import base64

import pytest

from identity_runtime.errors import DomainError
from services.kyc_tier.console_webauthn import parse_credential
from services.kyc_tier.paging import decode_page_token
from services.kyc_tier.sdk_sessions import normalise_origin

NESTED = "[" * 10_000 + "]" * 10_000


@pytest.mark.parametrize("origin", ["http://[::1", "https://[zz]", "https://a.example:99999"])
def test_unsplittable_origins_are_invalid_fields(origin: str) -> None:
    with pytest.raises(DomainError) as refused:
        normalise_origin(origin)
    assert refused.value.reason == "INVALID_FIELD"
    assert refused.value.metadata["field"] == "origins"


@pytest.mark.parametrize(
    ("origin", "as_browsers_send_it"),
    [
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://[2001:DB8::1]:443/", "https://[2001:db8::1]"),
        ("HTTPS://App.Example:8443", "https://app.example:8443"),
    ],
)
def test_origins_are_normalised_as_a_browser_serialises_them(
    origin: str, as_browsers_send_it: str
) -> None:
    assert normalise_origin(origin) == as_browsers_send_it


def test_a_deeply_nested_credential_is_an_invalid_field() -> None:
    with pytest.raises(DomainError) as refused:
        parse_credential(NESTED)
    assert (refused.value.reason, refused.value.metadata["field"]) == (
        "INVALID_FIELD",
        "credential_json",
    )


def test_a_deeply_nested_page_token_is_an_invalid_field() -> None:
    token = base64.urlsafe_b64encode(NESTED.encode()).decode().rstrip("=")
    with pytest.raises(DomainError) as refused:
        decode_page_token(token)
    assert refused.value.metadata["field"] == "page_token"


def test_a_deeply_nested_audit_page_token_is_an_invalid_field() -> None:
    from services.audit.log import QueryFilter
    from services.audit.log import decode_page_token as decode_audit_token

    token = base64.urlsafe_b64encode(NESTED.encode()).decode().rstrip("=")
    with pytest.raises(DomainError) as refused:
        decode_audit_token(token, QueryFilter(tenant_id="org_x"))
    assert refused.value.metadata["field"] == "page_token"
