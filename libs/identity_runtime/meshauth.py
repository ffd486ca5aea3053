"""Caller tokens: how every call inside the mesh proves who sent it.

A service trusts nothing a caller merely asserts in metadata. Each call
carries `authorization: Bearer <token>`, a short-lived JWT signed with
EdDSA (Ed25519) by the mesh process that made the call:

    header  {"alg": "EdDSA", "typ": "JWT", "kid": "<issuer>/<key thumbprint>"}
    claims  iss    the calling service ("gateway", "kyc-tier", ...)
            sub    the actor the call is made for ("api_key:key_...", "service:kyc-tier")
            org    the organisation (tenant); empty for anonymous routes
            scopes what the actor may do ("public", "internal"; "mesh" for a
                   mesh service acting as itself)
            aud    "identity-mesh"
            iat, exp (at most 60 s later), jti (unique)

The receiving service verifies the signature against the mesh's trusted
public keys (`TrustedKeys`: issuer -> Ed25519 public keys), the audience and
the expiry, and that the key belongs to the `iss` the token names; only then
does it bind org, actor and scopes into the call's context. A service that
calls another re-mints a token under its own key carrying the same org,
actor and scopes (`TokenSigner`, used by `identity_runtime.clients`).

Scopes: the gateway mints a partner's scopes as resolved from its API key;
the internal services add "mesh" to every token they mint, since every call
they make is a mesh service's own call; the gateway adds it only to calls it
makes as itself (resolving a partner's credential). Contract methods that are
not routed to partners require "mesh", and "mesh" counts only on those its
issuer is declared to call as itself (`identity_runtime.mesh.MESH_RPCS`,
enforced by `identity_runtime.authz`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from identity_runtime.errors import Unauthenticated
from identity_runtime.settings import SettingsError

AUDIENCE = "identity-mesh"
# Tokens a signer reuses and a verifier remembers, at most (each side's cache).
TOKEN_CACHE_SIZE = 10_000
# exp - iat of every token minted; verifiers refuse anything longer.
TOKEN_LIFETIME_SECONDS = 60
# A signer gives the same token again for this long (half its lifetime: a
# receiver always gets a token with at least 30 s left).
REUSE_SECONDS = TOKEN_LIFETIME_SECONDS // 2
# Clock difference tolerated between two machines of the mesh.
CLOCK_LEEWAY_SECONDS = 5
# The scope of a mesh service acting as itself.
MESH_SCOPE = "mesh"
# Reason of every refusal of a caller's credentials.
UNAUTHENTICATED_REASON = "CALLER_UNAUTHENTICATED"
_ALGORITHM = "EdDSA"
_MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True)
class Caller:
    """A caller whose credentials were verified."""

    # The mesh service that signed the token, or "api-key" for an API key.
    issuer: str
    org_id: str
    actor: str
    scopes: tuple[str, ...]

    @property
    def is_mesh_service(self) -> bool:
        return MESH_SCOPE in self.scopes


API_KEY_ISSUER = "api-key"


def key_id(issuer: str, public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{issuer}/{hashlib.sha256(raw).hexdigest()[:16]}"


def public_key_text(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def generate_private_key_pem() -> bytes:
    """A new Ed25519 private key, PKCS#8 PEM."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes | str) -> Ed25519PrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the mesh signing key must be an Ed25519 key")
    return key


class TrustedKeys:
    """The public keys the mesh accepts tokens from, by issuer.

    JSON form (a Kubernetes Secret or ConfigMap; public keys are not secret):
    `{"issuers": {"gateway": ["<base64 raw Ed25519 key>", ...], "kyc-tier": [...]}}`.
    Several keys per issuer allow rotation: add the new one, roll the signer,
    remove the old one.
    """

    def __init__(self, keys: Mapping[str, Iterable[Ed25519PublicKey]]):
        self._by_kid: dict[str, tuple[str, Ed25519PublicKey]] = {}
        for issuer, issuer_keys in keys.items():
            for key in issuer_keys:
                self._by_kid[key_id(issuer, key)] = (issuer, key)

    @property
    def issuers(self) -> frozenset[str]:
        return frozenset(issuer for issuer, _ in self._by_kid.values())

    def lookup(self, kid: str) -> tuple[str, Ed25519PublicKey] | None:
        return self._by_kid.get(kid)

    @classmethod
    def from_json(cls, text: str) -> TrustedKeys:
        try:
            document = json.loads(text)
            issuers = document["issuers"]
            keys: dict[str, list[Ed25519PublicKey]] = {}
            for issuer, encoded in issuers.items():
                if not isinstance(issuer, str) or not isinstance(encoded, list):
                    raise ValueError("issuers maps a name to a list of keys")
                keys[issuer] = [
                    Ed25519PublicKey.from_public_bytes(base64.b64decode(e, validate=True))
                    for e in encoded
                ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a trusted-keys document: {exc}") from None
        if not keys:
            raise ValueError("the trusted-keys document lists no issuer")
        return cls(keys)

    @staticmethod
    def document(keys: Mapping[str, Sequence[Ed25519PublicKey]]) -> str:
        issuers = {issuer: [public_key_text(k) for k in ks] for issuer, ks in keys.items()}
        return json.dumps({"issuers": issuers}, indent=1, sort_keys=True)


class TokenSigner:
    """Mints this process's caller tokens."""

    def __init__(self, issuer: str, private_key: Ed25519PrivateKey, *, mesh_identity: bool):
        self.issuer = issuer
        self._key = private_key
        self._kid = key_id(issuer, private_key.public_key())
        # True for internal services: each token they mint also says "mesh".
        self.mesh_identity = mesh_identity
        # (org, actor, scopes) -> (token, iat) of the latest token minted for them.
        self._recent: dict[tuple[str, str, tuple[str, ...]], tuple[str, int]] = {}

    def mint(self, org_id: str, actor: str, scopes: Iterable[str], now: float | None = None) -> str:
        """A token for these claims. Without `now`, a token this signer minted
        for the same organisation, actor and scopes is given again while it
        has at least half its lifetime left (signing, and the receiver's
        verification thanks to its cache, then happen once per half-minute
        rather than per call)."""
        if now is not None:
            return self._mint(org_id, actor, scopes, now)
        key = (org_id, actor, tuple(sorted(set(scopes))))
        current = time.time()
        reused = self._recent.get(key)
        if reused is not None and current - reused[1] < REUSE_SECONDS:
            return reused[0]
        token = self._mint(org_id, actor, key[2], current)
        if len(self._recent) >= TOKEN_CACHE_SIZE:
            self._recent.clear()
        self._recent[key] = (token, int(current))
        return token

    def _mint(self, org_id: str, actor: str, scopes: Iterable[str], now: float) -> str:
        issued = int(now)
        granted = set(scopes)
        if self.mesh_identity:
            granted.add(MESH_SCOPE)
        claims = {
            "iss": self.issuer,
            "sub": actor or f"service:{self.issuer}",
            "org": org_id,
            "scopes": sorted(granted),
            "aud": AUDIENCE,
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM, headers={"kid": self._kid})


def _refuse(message: str) -> Unauthenticated:
    return Unauthenticated(message, UNAUTHENTICATED_REASON)


class TokenVerifier:
    """Checks a caller token; every failure is UNAUTHENTICATED / CALLER_UNAUTHENTICATED
    with a message that names the check, never the token."""

    def __init__(self, trusted: TrustedKeys, leeway_seconds: float = CLOCK_LEEWAY_SECONDS):
        self.trusted = trusted
        self.leeway = leeway_seconds
        # Tokens that verified -> (caller, exp): the same token verifies the same
        # way until it expires, so its signature is checked once (bounded).
        self._verified: dict[str, tuple[Caller, int]] = {}

    def verify(self, token: str) -> Caller:
        known = self._verified.get(token)
        if known is not None:
            if known[1] > time.time() - self.leeway:
                return known[0]
            self._verified.pop(token, None)
        caller, exp = self._verify(token)
        if len(self._verified) >= TOKEN_CACHE_SIZE:
            now = time.time()
            for seen, (_, expiry) in list(self._verified.items()):
                if expiry <= now - self.leeway:
                    self._verified.pop(seen, None)
            if len(self._verified) >= TOKEN_CACHE_SIZE:
                self._verified.clear()
        self._verified[token] = (caller, exp)
        return caller

    def _verify(self, token: str) -> tuple[Caller, int]:
        if len(token) > _MAX_TOKEN_CHARS:
            raise _refuse("the caller token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refuse("the caller token is not a JWT") from None
        kid = header.get("kid")
        found = self.trusted.lookup(kid) if isinstance(kid, str) else None
        if found is None or header.get("alg") != _ALGORITHM:
            raise _refuse("the caller token is not signed by a key the mesh trusts")
        issuer, key = found
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=issuer,
                leeway=self.leeway,
                options={"require": ["iss", "sub", "aud", "iat", "exp", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise _refuse("the caller token has expired") from None
        except jwt.InvalidAudienceError:
            raise _refuse("the caller token is not meant for the mesh") from None
        except jwt.InvalidIssuerError:
            raise _refuse("the caller token's issuer does not own its key") from None
        except jwt.PyJWTError:
            raise _refuse("the caller token's signature or claims do not verify") from None
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise _refuse("the caller token's times are not integers")
        if exp - iat > TOKEN_LIFETIME_SECONDS or iat > time.time() + self.leeway:
            raise _refuse(f"a caller token lives at most {TOKEN_LIFETIME_SECONDS} seconds")
        org, actor, scopes = claims.get("org", ""), claims["sub"], claims.get("scopes", [])
        if (
            not isinstance(org, str)
            or not isinstance(actor, str)
            or not isinstance(scopes, list)
            or not all(isinstance(s, str) for s in scopes)
        ):
            raise _refuse("the caller token's claims have the wrong types")
        caller = Caller(issuer=issuer, org_id=org[:64], actor=actor[:128], scopes=tuple(scopes))
        return caller, exp


def _read(path: Path | None, inline: str, variable: str) -> str:
    if path is None:
        return inline
    try:
        return path.read_text()
    except OSError as exc:
        raise SettingsError([f"{variable}_FILE: cannot read {path}: {exc.strerror}"]) from None


def trusted_keys_from(path: Path | None, inline: str, variable: str) -> TrustedKeys:
    """The trusted keys from `<variable>_FILE` or `<variable>`; SettingsError when
    neither is set or the document is malformed."""
    text = _read(path, inline, variable)
    if not text.strip():
        raise SettingsError(
            [f"{variable}_FILE is required: the mesh's trusted token keys (or {variable} inline)"]
        )
    try:
        return TrustedKeys.from_json(text)
    except ValueError as exc:
        raise SettingsError([f"{variable}: {exc}"]) from None


def signer_from(
    issuer: str, path: Path | None, inline: str, variable: str, *, mesh_identity: bool
) -> TokenSigner:
    """This process's token signer from `<variable>_FILE` or `<variable>`."""
    text = _read(path, inline, variable)
    if not text.strip():
        raise SettingsError(
            [f"{variable}_FILE is required: {issuer} signs its calls to other services with it"]
        )
    try:
        key = load_private_key(text)
    except ValueError as exc:
        raise SettingsError([f"{variable}: {exc}"]) from None
    return TokenSigner(issuer, key, mesh_identity=mesh_identity)


def service_signer(service_name: str, settings: Any, prefix: str) -> TokenSigner:
    """The signer of an internal service, from its `<PREFIX>_MESH_SIGNING_KEY[_FILE]`."""
    return signer_from(
        service_name,
        settings.mesh_signing_key_file,
        settings.mesh_signing_key,
        f"{prefix}_MESH_SIGNING_KEY",
        mesh_identity=True,
    )
