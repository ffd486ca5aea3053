"""OAuth 2.0 client credentials (RFC 6749 4.4) for partners' backends.

- Clients belong to one organisation. A client secret is 256 random bits,
  shown once and stored as HMAC-SHA256 under a pepper (a slow hash such as
  Argon2 protects guessable passwords; it adds nothing to a 256-bit random
  secret, and a pepper keeps a stolen table useless).
- Access tokens are JWTs signed with EdDSA (Ed25519) by the primary key of a
  keyring `{"primary": kid, "keys": {kid: PEM}}`; every key's public half is
  in the JWKS, so a key is rotated by adding a new primary, waiting one token
  lifetime, then removing the old one.
- Claims: iss, aud "identity-platform", sub "oauth_client:<id>", org, scope
  "public", iat, exp, jti; header kid. The gateway verifies them against the
  published JWKS (gateway/oauth.py), then asks `authenticate_client` whether
  the client is still active (cached like an API key, dropped when
  `revocation_epoch` moves), so revoking a client ends its tokens within the
  gateway's revocation check, not at their expiry.
- A client's creation and revocation are audited (`oauth_client.create`,
  `oauth_client.revoke`: subject `oauth_client:<id>`, the caller as actor,
  never the secret or the name), through face-match's audit outbox in the
  transaction of the change (audit.record), as kyc-tier audits API keys.
  Revoking a revoked client changes nothing and is not audited again; an
  unknown client is refused (404) without an entry, as for API keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from identity_runtime.errors import InvalidArgument, NotFound, Unauthenticated
from identity_runtime.settings import SettingsError
from identity_store.db import Database
from services.face_match import audit
from services.face_match.models import OAuthClient

AUDIENCE = "identity-platform"
SUBJECT_PREFIX = "oauth_client:"
_CLIENT_ID_LENGTH = 40


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKeys:
    primary: str
    keys: dict[str, Ed25519PrivateKey]

    @classmethod
    def parse(cls, document: str) -> SigningKeys:
        try:
            raw = json.loads(document)
            keys = {}
            for kid, pem in raw["keys"].items():
                key = serialization.load_pem_private_key(pem.encode(), password=None)
                if not isinstance(key, Ed25519PrivateKey):
                    raise ValueError(f"key {kid} is not Ed25519")
                keys[str(kid)] = key
            primary = str(raw["primary"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SettingsError([f"FACE_MATCH_OAUTH_SIGNING_KEYS: {exc}"]) from None
        if primary not in keys:
            raise SettingsError(["FACE_MATCH_OAUTH_SIGNING_KEYS: the primary is not a key"])
        return cls(primary, keys)

    @classmethod
    def load(cls, path: Path | None, inline: str) -> SigningKeys:
        return cls.parse(path.read_text() if path is not None else inline)

    @staticmethod
    def generate(kid: str = "k1") -> str:
        """A new keyring document with one key (for `identity up` and tests)."""
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return json.dumps({"primary": kid, "keys": {kid: pem.decode()}})

    def jwks(self) -> list[dict[str, str]]:
        return [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": _b64(
                    key.public_key().public_bytes(
                        serialization.Encoding.Raw, serialization.PublicFormat.Raw
                    )
                ),
                "kid": kid,
                "use": "sig",
                "alg": "EdDSA",
            }
            for kid, key in sorted(self.keys.items())
        ]


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


@dataclass(frozen=True)
class ClientView:
    client_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


def _view(row: OAuthClient) -> ClientView:
    return ClientView(row.client_id, row.name, row.created_at, row.revoked_at)


def hash_secret(pepper: str, secret: str) -> str:
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def new_client(
    session: Session, org_id: str, name: str, pepper: str, now: datetime, actor: str = ""
) -> tuple[ClientView, str]:
    """Add a client of `org_id`; (its view, its secret: shown once). Audited
    (oauth_client.create) by `actor` (else face-match itself)."""
    name = name.strip()
    if not 1 <= len(name) <= 200:  # as an organisation's or an API key's name
        raise InvalidArgument(
            "name must be 1 to 200 characters", "INVALID_FIELD", {"field": "name"}
        )
    secret = "fmcs_" + secrets.token_urlsafe(32)
    row = OAuthClient(
        client_id="fmci_" + secrets.token_hex(16),
        org_id=org_id,
        name=name,
        secret_hash=hash_secret(pepper, secret),
        created_at=now,
    )
    session.add(row)
    _audit(session, row, actor, "oauth_client.create", now)
    return _view(row), secret


def revoke_client(
    session: Session, org_id: str, client_id: str, now: datetime, actor: str = ""
) -> ClientView:
    """Revoke the organisation's client (a revoked one is answered
    unchanged); audited (oauth_client.revoke) when it changes."""
    row = session.get(OAuthClient, client_id, with_for_update=True)
    if row is None or row.org_id != org_id:
        raise NotFound("no OAuth client with this id", "CLIENT_NOT_FOUND")
    if row.revoked_at is None:
        row.revoked_at = now
        _audit(session, row, actor, "oauth_client.revoke", now)
    return _view(row)


def _audit(session: Session, row: OAuthClient, actor: str, action: str, now: datetime) -> None:
    audit.record(
        session,
        row.org_id,
        actor or "service:face-match",
        action,
        f"{SUBJECT_PREFIX}{row.client_id}",
        "success",
        now,
        {"scope": "public"},
    )


# No generated repr: the pepper and the signing keys stay out of logs.
@dataclass(frozen=True, eq=False, repr=False)
class OAuthClients:
    database: Database
    keys: SigningKeys
    _: KW_ONLY
    pepper: str
    issuer: str
    token_seconds: int
    clock: Callable[[], datetime]

    def _hash(self, secret: str) -> str:
        return hash_secret(self.pepper, secret)

    async def create(self, org_id: str, name: str, actor: str = "") -> tuple[ClientView, str]:
        return await self.database.run(
            lambda s: new_client(s, org_id, name, self.pepper, self.clock(), actor)
        )

    async def revoke(self, org_id: str, client_id: str, actor: str = "") -> ClientView:
        return await self.database.run(
            lambda s: revoke_client(s, org_id, client_id, self.clock(), actor)
        )

    async def authenticate_client(self, client_id: str) -> str:
        """The organisation of an active client; UNAUTHENTICATED /
        ACCESS_TOKEN_REVOKED when it is revoked or unknown (the gateway asks
        before accepting one of its access tokens)."""

        def lookup(session: Session) -> str | None:
            row = session.get(OAuthClient, client_id) if client_id else None
            return row.org_id if row is not None and row.revoked_at is None else None

        org_id = await self.database.run(lookup)
        if org_id is None:
            raise Unauthenticated(
                "the access token's OAuth client has been revoked", "ACCESS_TOKEN_REVOKED"
            )
        return org_id

    async def revocation_epoch(self) -> int:
        """Grows with every client revocation (revocations are never undone)."""

        def count(session: Session) -> int:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(OAuthClient)
                    .where(OAuthClient.revoked_at.is_not(None))
                )
                or 0
            )

        return await self.database.run(count)

    async def issue(
        self, grant_type: str, client_id: str, client_secret: str, scope: str
    ) -> IssuedToken:
        if not grant_type:
            # RFC 6749 section 5.2: a missing parameter is invalid_request, as
            # the form body's own check says (gateway/oauth.py).
            raise InvalidArgument("the grant_type parameter is missing", "MALFORMED_REQUEST")
        if grant_type != "client_credentials":
            raise InvalidArgument(
                "grant_type must be client_credentials", "INVALID_FIELD", {"field": "grant_type"}
            )
        if scope and set(scope.split()) - {"public"}:
            raise InvalidArgument(
                "only the public scope may be asked for", "INVALID_FIELD", {"field": "scope"}
            )
        invalid = Unauthenticated(
            "the client credentials are not valid", "CLIENT_CREDENTIALS_INVALID"
        )
        if not client_id or len(client_id) > _CLIENT_ID_LENGTH or not client_secret:
            raise invalid

        def lookup(session: Session) -> tuple[str, str, bool] | None:
            row = session.scalars(
                select(OAuthClient).where(OAuthClient.client_id == client_id)
            ).first()
            if row is None:
                return None
            return row.org_id, row.secret_hash, row.revoked_at is None

        found = await self.database.run(lookup)
        presented = self._hash(client_secret)
        if found is None:
            hmac.compare_digest(presented, "0" * 64)  # same work as a known client
            raise invalid
        org_id, stored, active = found
        if not hmac.compare_digest(presented, stored) or not active:
            raise invalid
        now = int(self.clock().timestamp())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": SUBJECT_PREFIX + client_id,
            "org": org_id,
            "scope": "public",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_seconds,
            "jti": secrets.token_hex(16),
        }
        token = jwt.encode(
            claims,
            self.keys.keys[self.keys.primary],
            algorithm="EdDSA",
            headers={"kid": self.keys.primary},
        )
        return IssuedToken(token, self.token_seconds, "public")
