"""Webhook and evidence signatures."""

from __future__ import annotations

from identity_runtime import signing

SECRET = b"whsec_test_secret"


def test_both_headers_carry_the_same_verifiable_signature() -> None:
    body = b'{"event":"kyc.tier_changed"}'
    headers = signing.signature_headers(SECRET, body)
    assert set(headers) == {"X-Identity-Signature", "X-Quantum-Signature"}
    assert headers["X-Identity-Signature"].startswith("sha256=")
    assert signing.verify_headers(
        SECRET, body, {"x-quantum-signature": headers["X-Quantum-Signature"]}
    )
    assert signing.verify_headers(
        SECRET, body, {"X-Identity-Signature": headers["X-Identity-Signature"]}
    )


def test_a_changed_body_or_secret_or_format_fails() -> None:
    body = b'{"a":1}'
    good = signing.sign(SECRET, body)
    assert not signing.verify(SECRET, b'{"a":2}', good)
    assert not signing.verify(b"other", body, good)
    assert not signing.verify(SECRET, body, good.removeprefix("sha256="))
    assert not signing.verify_headers(SECRET, body, {})


def test_canonical_json_is_order_independent() -> None:
    assert signing.canonical_json({"b": 1, "a": {"y": 2, "x": 1}}) == b'{"a":{"x":1,"y":2},"b":1}'
