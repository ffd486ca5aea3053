"""Face Match's callback safety: which destinations a production callback may reach."""

from __future__ import annotations

import pytest

from identity_runtime.errors import InvalidArgument
from services.face_match.submissions import check_callback_url
from services.face_match.worker import public_destination, signed
from services.kyc_tier.signing import verify_headers


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/cb",
        "https://localhost/cb",
        "https://10.1.2.3/cb",
        "https://192.168.0.10/cb",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/cb",
        "https://no-such-host.invalid/cb",
    ],
)
async def test_private_loopback_metadata_and_unresolvable_hosts_are_refused(url: str) -> None:
    assert await public_destination(url) is False


async def test_a_public_address_is_allowed() -> None:
    assert await public_destination("https://8.8.8.8/cb") is True


def test_callback_urls_are_https_in_production() -> None:
    check_callback_url("https://partner.example/cb", production=True)
    check_callback_url("http://127.0.0.1:9000/cb", production=False)
    for url in ("http://partner.example/cb", "https://user:pw@partner.example/cb", "ftp://x/y"):
        with pytest.raises(InvalidArgument):
            check_callback_url(url, production=True)


@pytest.mark.parametrize(
    "host", ["10.0.0.1", "169.254.169.254", "0xa9fea9fe", "167772161", "[::1]", "127.1"]
)
def test_a_private_address_named_literally_is_refused_in_production(host: str) -> None:
    """Refused when submitted (black-box probe: accepted, refused only at delivery)."""
    with pytest.raises(InvalidArgument) as refused:
        check_callback_url(f"https://{host}/cb", production=True)
    assert refused.value.metadata == {"field": "callback_url"}
    check_callback_url(f"https://{host}/cb", production=False)  # a developer's own machine


def test_public_addresses_and_names_stay_allowed_in_production() -> None:
    for url in ("https://8.8.8.8/cb", "https://cafe.bad/cb", "https://partner.example/cb"):
        check_callback_url(url, production=True)


def test_callbacks_are_signed_like_webhooks() -> None:
    headers = signed(b"secret", b'{"a":1}')
    assert headers["X-Identity-Signature"] == headers["X-Quantum-Signature"]
    assert headers["X-Identity-Signature"].startswith("sha256=")
    assert verify_headers(b"secret", b'{"a":1}', headers)
    assert not verify_headers(b"secret", b'{"a":2}', headers)


@pytest.mark.parametrize(
    "url", ["https://[zz]/x", "https://[::1/x", "http://[::1", "https://partner.example:99999/cb"]
)
def test_unparseable_callback_urls_are_invalid_fields_not_crashes(url: str) -> None:
    # urlsplit raises ValueError on these; the caller gets INVALID_FIELD.
    with pytest.raises(InvalidArgument) as refused:
        check_callback_url(url, production=False)
    assert refused.value.reason == "INVALID_FIELD"
    assert refused.value.metadata["field"] == "callback_url"
