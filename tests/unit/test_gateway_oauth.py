"""The gateway's verification of OAuth access tokens: real Ed25519 keys, real JWTs."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from gateway import oauth
from gateway.auth import bearer_access_token
from gateway.errors import GatewayError
from identity_runtime.errors import Unauthenticated
from services.face_match.oauth import SigningKeys

ISSUER = "identity-platform/face-match"


def keyring(*kids: str) -> SigningKeys:
    documents = [json.loads(SigningKeys.generate(kid)) for kid in kids]
    merged = {"primary": kids[-1], "keys": {}}
    for document in documents:
        merged["keys"].update(document["keys"])
    return SigningKeys.parse(json.dumps(merged))


def token(keys: SigningKeys, kid: str | None = None, **claims: object) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": "identity-platform",
        "sub": "oauth_client:fmci_1",
        "org": "org_1",
        "scope": "public",
        "iat": now,
        "exp": now + 300,
    }
    body.update(claims)
    kid = kid or keys.primary
    return jwt.encode(body, keys.keys[kid], algorithm="EdDSA", headers={"kid": kid})


class Fetcher:
    def __init__(self, keys: SigningKeys):
        self.keys = keys
        self.calls = 0

    async def __call__(self) -> list[dict[str, str]]:
        self.calls += 1
        return self.keys.jwks()


async def test_a_valid_token_maps_to_its_organisation_and_client() -> None:
    keys = keyring("k1")
    tokens = oauth.AccessTokens(Fetcher(keys), ISSUER, 300)
    claims = await tokens.verify(token(keys))
    assert (claims.org_id, claims.client_id, claims.scopes) == (
        "org_1",
        "fmci_1",
        frozenset({"public"}),
    )


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 60},
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"sub": "api_key:key_1"},
        {"org": ""},
    ],
    ids=["expired", "issuer", "audience", "subject", "organisation"],
)
async def test_tokens_with_wrong_claims_are_refused(claims: dict[str, object]) -> None:
    keys = keyring("k1")
    tokens = oauth.AccessTokens(Fetcher(keys), ISSUER, 300)
    with pytest.raises(Unauthenticated) as exc:
        await tokens.verify(token(keys, **claims))
    assert exc.value.reason == "ACCESS_TOKEN_INVALID"


async def test_scopes_beyond_public_are_not_granted() -> None:
    keys = keyring("k1")
    claims = await oauth.AccessTokens(Fetcher(keys), ISSUER, 300).verify(
        token(keys, scope="public internal")
    )
    assert claims.scopes == frozenset({"public"})


async def test_a_token_of_another_key_or_tampered_is_refused() -> None:
    keys, stranger = keyring("k1"), keyring("k1")
    tokens = oauth.AccessTokens(Fetcher(keys), ISSUER, 300)
    with pytest.raises(Unauthenticated):
        await tokens.verify(token(stranger))
    good = token(keys)
    head, body, signature = good.split(".")
    forged_body = jwt.utils.base64url_encode(
        json.dumps(
            {**jwt.decode(good, options={"verify_signature": False}), "org": "org_2"}
        ).encode()
    ).decode()
    with pytest.raises(Unauthenticated):
        await tokens.verify(f"{head}.{forged_body}.{signature}")


async def test_a_rotated_in_key_is_learnt_by_fetching_the_jwks_again() -> None:
    old = keyring("k1")
    fetcher = Fetcher(old)
    now = [0.0]
    tokens = oauth.AccessTokens(fetcher, ISSUER, 300, clock=lambda: now[0])
    await tokens.verify(token(old))
    assert fetcher.calls == 1
    rotated = SigningKeys.parse(
        json.dumps(
            {
                "primary": "k2",
                "keys": {
                    **json.loads(SigningKeys.generate("k2"))["keys"],
                },
            }
        )
    )
    both = SigningKeys("k2", {**old.keys, **rotated.keys})
    fetcher.keys = both
    # Within 10 s of the last fetch an unknown kid is not fetched again (no stampede).
    now[0] = 5.0
    with pytest.raises(Unauthenticated):
        await tokens.verify(token(both, "k2"))
    assert fetcher.calls == 1
    now[0] = 11.0
    claims = await tokens.verify(token(both, "k2"))
    assert claims.org_id == "org_1" and fetcher.calls == 2
    # Tokens of the old key still verify while it is published.
    await tokens.verify(token(both, "k1"))


def test_bearer_access_token_tells_jwts_from_api_keys() -> None:
    assert bearer_access_token(["Bearer a.b.c"], []) == "a.b.c"
    assert bearer_access_token(["Bearer idk_abcdefgh.x.y"], []) is None
    assert bearer_access_token(["Bearer idk_abcdefghijk"], []) is None
    assert bearer_access_token([], ["idk_abcdefghijk"]) is None
    with pytest.raises(GatewayError):
        bearer_access_token(["Bearer a.b.c"], ["idk_abcdefghijk"])


class ActiveClients:
    """face-match's AuthenticateClient, as the gateway asks it: the client's
    organisation, or UNAUTHENTICATED / ACCESS_TOKEN_REVOKED."""

    def __init__(self, **orgs: str):
        self.orgs = orgs
        self.asked: list[str] = []

    async def __call__(self, client_id: str) -> str:
        self.asked.append(client_id)
        if client_id not in self.orgs:
            raise Unauthenticated("revoked", "ACCESS_TOKEN_REVOKED")
        return self.orgs[client_id]


async def test_a_verified_token_is_accepted_only_while_its_client_is_active() -> None:
    keys = keyring("k1")
    clients = ActiveClients(fmci_1="org_1")
    tokens = oauth.AccessTokens(Fetcher(keys), ISSUER, 300, active_client=clients)
    assert (await tokens.verify(token(keys))).client_id == "fmci_1"
    del clients.orgs["fmci_1"]
    with pytest.raises(Unauthenticated) as exc:
        await tokens.verify(token(keys))
    assert exc.value.reason == "ACCESS_TOKEN_REVOKED"


async def test_a_token_naming_another_organisation_than_its_client_is_invalid() -> None:
    keys = keyring("k1")
    tokens = oauth.AccessTokens(
        Fetcher(keys), ISSUER, 300, active_client=ActiveClients(fmci_1="org_2")
    )
    with pytest.raises(Unauthenticated) as exc:
        await tokens.verify(token(keys))
    assert exc.value.reason == "ACCESS_TOKEN_INVALID"


async def test_a_token_that_does_not_verify_never_reaches_face_match() -> None:
    keys = keyring("k1")
    clients = ActiveClients(fmci_1="org_1")
    tokens = oauth.AccessTokens(Fetcher(keys), ISSUER, 300, active_client=clients)
    with pytest.raises(Unauthenticated):
        await tokens.verify(token(keys, exp=int(time.time()) - 60))
    assert clients.asked == []
