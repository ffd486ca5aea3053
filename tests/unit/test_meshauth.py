"""Caller tokens: what the verifier accepts and each way it refuses (real Ed25519)."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from identity_runtime import meshauth
from identity_runtime.errors import Unauthenticated
from identity_runtime.meshauth import (
    AUDIENCE,
    TokenSigner,
    TokenVerifier,
    TrustedKeys,
    key_id,
    signer_from,
    trusted_keys_from,
)
from identity_runtime.settings import SettingsError

GATEWAY_KEY = Ed25519PrivateKey.generate()
KYC_TIER_KEY = Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys(
    {"gateway": [GATEWAY_KEY.public_key()], "kyc-tier": [KYC_TIER_KEY.public_key()]}
)
VERIFIER = TokenVerifier(TRUSTED)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": "gateway",
        "sub": "api_key:key_1",
        "org": "org_a",
        "scopes": ["public"],
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def signed(
    values: dict[str, Any], key: Ed25519PrivateKey = GATEWAY_KEY, issuer: str = "gateway"
) -> str:
    kid = key_id(issuer, key.public_key())
    return jwt.encode(values, key, algorithm="EdDSA", headers={"kid": kid})


def refused(token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        VERIFIER.verify(token)
    assert caught.value.reason == "CALLER_UNAUTHENTICATED"
    return caught.value.message


def test_a_signed_token_binds_its_claims() -> None:
    caller = VERIFIER.verify(
        TokenSigner("gateway", GATEWAY_KEY, mesh_identity=False).mint(
            "org_a", "api_key:key_1", ("public",)
        )
    )
    assert (caller.issuer, caller.org_id, caller.actor, caller.scopes) == (
        "gateway",
        "org_a",
        "api_key:key_1",
        ("public",),
    )
    assert not caller.is_mesh_service


def test_an_internal_service_always_speaks_as_a_mesh_service() -> None:
    token = TokenSigner("kyc-tier", KYC_TIER_KEY, mesh_identity=True).mint("org_a", "", ())
    caller = VERIFIER.verify(token)
    assert caller.scopes == ("mesh",) and caller.actor == "service:kyc-tier"
    assert caller.is_mesh_service


# The claims are made when each test runs (not when the tests are collected):
# a token minted at collection has expired by the time a long run reaches it.
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (lambda now: {"iat": now - 300, "exp": now - 200}, "expired"),
        (lambda now: {"aud": "another-mesh"}, "not meant for the mesh"),
        (lambda now: {"exp": now + 3600}, "at most 60 seconds"),
        (lambda now: {"jti": None}, "do not verify"),
        (lambda now: {"iss": "kyc-tier"}, "does not own its key"),
        (lambda now: {"scopes": "public"}, "wrong types"),
    ],
    ids=["expired", "audience", "lifetime", "no-jti", "issuer-not-key-owner", "scopes-type"],
)
def test_bad_claims_are_refused(changes: Any, message: str) -> None:
    assert message in refused(signed(claims(**changes(int(time.time())))))


def test_a_key_of_another_issuer_cannot_speak_for_the_gateway() -> None:
    # kyc-tier's key, a token claiming the gateway's kid: the signature fails.
    token = jwt.encode(
        claims(),
        KYC_TIER_KEY,
        algorithm="EdDSA",
        headers={"kid": key_id("gateway", GATEWAY_KEY.public_key())},
    )
    assert "do not verify" in refused(token)


def test_unsigned_malformed_and_unknown_tokens_are_refused() -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    assert "not signed by a key the mesh trusts" in refused(unsigned)
    assert "not a JWT" in refused("not-a-token")
    assert "too long" in refused("a" * 5000)
    stranger = Ed25519PrivateKey.generate()
    assert "not signed by a key the mesh trusts" in refused(signed(claims(), stranger))


def test_trusted_keys_round_trip_and_refuse_malformed_documents() -> None:
    document = TrustedKeys.document({"gateway": [GATEWAY_KEY.public_key()]})
    assert TrustedKeys.from_json(document).issuers == {"gateway"}
    for bad in ("{}", '{"issuers": {}}', '{"issuers": {"gateway": ["@@@"]}}', "[1]"):
        with pytest.raises(ValueError):
            TrustedKeys.from_json(bad)


def test_missing_key_settings_fail_fast_naming_the_variable(tmp_path) -> None:
    with pytest.raises(SettingsError, match="AUDIT_MESH_TRUSTED_KEYS_FILE is required"):
        trusted_keys_from(None, "", "AUDIT_MESH_TRUSTED_KEYS")
    with pytest.raises(SettingsError, match="GATEWAY_MESH_SIGNING_KEY_FILE is required"):
        signer_from("gateway", None, "  ", "GATEWAY_MESH_SIGNING_KEY", mesh_identity=False)
    with pytest.raises(SettingsError, match="cannot read"):
        signer_from(
            "gateway", tmp_path / "absent.pem", "", "GATEWAY_MESH_SIGNING_KEY", mesh_identity=False
        )
    with pytest.raises(SettingsError, match="not a PEM private key"):
        signer_from("gateway", None, "garbage", "GATEWAY_MESH_SIGNING_KEY", mesh_identity=False)


def test_mesh_tls_is_required_in_production_and_its_files_are_named() -> None:
    from dataclasses import replace

    from identity_runtime.meshtls import mesh_tls_from
    from identity_runtime.settings import ServiceSettings

    off = ServiceSettings(mesh_tls="off")
    assert mesh_tls_from(off, "AUDIT") is None
    with pytest.raises(SettingsError, match="AUDIT_MESH_TLS=off: production"):
        mesh_tls_from(replace(off, environment="production"), "AUDIT")
    with pytest.raises(SettingsError) as caught:
        mesh_tls_from(ServiceSettings(), "AUDIT")
    assert [p.split(" ")[0] for p in caught.value.problems] == [
        "AUDIT_MESH_TLS_CA_FILE",
        "AUDIT_MESH_TLS_CERT_FILE",
        "AUDIT_MESH_TLS_KEY_FILE",
    ]


def test_a_signer_reuses_a_token_for_half_its_lifetime(monkeypatch) -> None:
    clock = [time.time()]
    monkeypatch.setattr(meshauth, "time", SimpleNamespace(time=lambda: clock[0]))
    signer = TokenSigner("kyc-tier", KYC_TIER_KEY, mesh_identity=True)
    first = signer.mint("org_a", "api_key:key_1", ("public", "internal"))
    assert signer.mint("org_a", "api_key:key_1", ("internal", "public")) == first
    # Other claims get their own token.
    assert signer.mint("org_b", "api_key:key_1", ("public", "internal")) != first
    assert signer.mint("org_a", "api_key:key_2", ("public", "internal")) != first
    assert signer.mint("org_a", "api_key:key_1", ("public",)) != first
    # An explicit time always mints.
    assert signer.mint("org_a", "api_key:key_1", ("public", "internal"), clock[0]) != first
    clock[0] += meshauth.REUSE_SECONDS + 1
    assert signer.mint("org_a", "api_key:key_1", ("public", "internal")) != first


def test_a_remembered_token_still_expires_and_a_refused_one_is_never_remembered(
    monkeypatch,
) -> None:
    clock = [time.time()]
    monkeypatch.setattr(meshauth, "time", SimpleNamespace(time=lambda: clock[0]))
    verifier = TokenVerifier(TRUSTED)
    checked: list[str] = []
    full_check = verifier._verify
    monkeypatch.setattr(verifier, "_verify", lambda t: checked.append(t) or full_check(t))
    token = signed(claims())
    assert verifier.verify(token).org_id == "org_a"
    assert verifier.verify(token).org_id == "org_a"
    assert len(checked) == 1  # the second answer came from memory
    # Past its expiry (and the leeway) the token is checked in full again, which
    # refuses an expired token (test_bad_claims_are_refused).
    clock[0] += 60 + meshauth.CLOCK_LEEWAY_SECONDS + 1
    verifier.verify(token)
    assert len(checked) == 2
    forged = signed(claims(), Ed25519PrivateKey.generate())
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            verifier.verify(forged)
    assert checked[2:] == [forged, forged]
