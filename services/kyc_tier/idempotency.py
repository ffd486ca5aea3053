"""`Idempotency-Key` on kyc-tier's mutations that carry no capture nonce.

A partner that retries a POST (a timeout, a dropped connection) sends the
same `Idempotency-Key` header (the gateway forwards it as the
`idempotency-key` gRPC metadata; a gRPC caller sends that metadata itself):

- a key seen before in the caller's organisation, within 24 h, with the same
  RPC and the same request (the digest of its deterministic encoding, which
  includes the path's ids): the first response, unchanged, and nothing runs;
- the same key with another RPC or another request: ALREADY_EXISTS /
  IDEMPOTENCY_KEY_REUSED (HTTP 409);
- the same key while its first request still runs: ABORTED /
  IDEMPOTENCY_KEY_IN_PROGRESS (HTTP 409), so concurrent duplicates never both
  execute (the key is claimed by inserting its row, whose primary key is the
  organisation and the key: a second insert fails);
- a request that fails releases its key: a retry runs again;
- a key whose request was about a customer since erased: FAILED_PRECONDITION
  / IDEMPOTENCY_KEY_ERASED (HTTP 410) until the key expires. The erasure
  destroyed the kept response and the request's digest (`forget_customer`)
  but keeps the key claimed, by its digest only (a partner may build keys
  from its own id of the person), so a client's automatic retry of, say,
  the customer's creation never collects their personal data again;
  nothing is replayed and nothing runs. A request still running when the
  customer's erasure begins keeps nothing of its answer either (`_keep`
  checks under the customer's row lock), except the erasure's own receipt
  (`kept_after_erasure`: ids only).

Keys are scoped per organisation (another organisation's key of the same
text is a different key) and expire after 24 h. Responses are kept sealed
(AES-256-GCM) under the organisation's own data key: some carry a secret
shown once (a new webhook's or API key's), and a replay shows it again only
to the organisation that made it. The table is kyc-tier's, beside the rows
these RPCs write (docs/gateway.md says why not the gateway's).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import LargeBinary, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from identity_crypto import envelope
from identity_crypto.datakeys import DataKeyStore
from identity_runtime.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    invalid_field,
)
from identity_store.declarative import ID
from identity_store.types import utcnow
from services.kyc_tier import models
from services.kyc_tier.store import Store

METADATA_KEY = "idempotency-key"
WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 255
PURPOSE = "idempotency"
# `request_sha256` of a key whose customer was erased: no digest of their
# request is kept (it was computed over their personal data).
ERASED = "erased"


def erased_key(key: str) -> str:
    """How a key of an erased customer's request is kept: its digest."""
    return f"{ERASED}:{hashlib.sha256(key.encode()).hexdigest()}"


class IdempotentRequest(models.Base):
    """A request sent with an `Idempotency-Key` (per organisation, 24 h): the
    digest of its method and body, and its response once it succeeded."""

    __tablename__ = "idempotent_requests"

    org_id: Mapped[str] = mapped_column(ID, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(200))
    # The request's digest, or ERASED.
    request_sha256: Mapped[str] = mapped_column(String(64))
    # None while the first request runs, and once its customer is erased.
    response: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The customer the request or its response is about: an erasure drops
    # the kept responses (they may hold the customer's name or email).
    customer_id: Mapped[str | None] = mapped_column(ID, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class IdempotencyKeyInProgress(
    DomainError, code="ABORTED", reason="IDEMPOTENCY_KEY_IN_PROGRESS"
): ...


def key_reused() -> AlreadyExists:
    return AlreadyExists(
        "this Idempotency-Key was used with a different request; use a new key",
        "IDEMPOTENCY_KEY_REUSED",
    )


def in_progress() -> IdempotencyKeyInProgress:
    return IdempotencyKeyInProgress(
        "the first request with this Idempotency-Key is still running; retry shortly",
        metadata={"retry_after_seconds": 1},
    )


def key_erased() -> FailedPrecondition:
    return FailedPrecondition(
        "the first request with this Idempotency-Key was about a customer since erased: "
        "it is neither replayed nor run again; use a new key for a new request",
        "IDEMPOTENCY_KEY_ERASED",
    )


def request_digest(method: str, request: bytes) -> str:
    """The digest of an RPC's name and its request's deterministic encoding."""
    return hashlib.sha256(method.encode() + b"\n" + request).hexdigest()


def valid_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise invalid_field(
            "Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


@dataclass
class IdempotentRequests:
    store: Store
    keys: DataKeyStore
    clock: Callable[[], datetime]

    async def run(
        self,
        org_id: str,
        key: str,
        method: str,
        request: bytes,
        call: Callable[[], Awaitable[tuple[bytes, str]]],
        *,
        kept_after_erasure: bool = False,
        answers_current: bool = False,
    ) -> bytes:
        """The first (encoded) response to (org, key), or `call()`'s, kept 24 h;
        `request` is the request's deterministic encoding; `call()` answers the
        encoded response and the customer it is about ("" for none). A
        response `kept_after_erasure` holds no personal data (an erasure's
        receipt): it is kept though its customer's erasure has begun.
        `answers_current`: `call()` is idempotent by itself and answers a
        state that moves on (an erasure's progress): a repeat calls it again
        (the key still refuses another request and a concurrent one)."""
        key = valid_key(key)
        digest = request_digest(method, request)
        now = self.clock()
        try:
            kept = await self.store.write(
                lambda s: self._claim(s, org_id, key, method, digest, now), audited=False
            )
        except IntegrityError:
            raise in_progress() from None  # a concurrent first request claimed it
        if kept is not None:
            return (await call())[0] if answers_current else kept
        try:
            encoded, customer_id = await call()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.store.write(lambda s: self._release(s, org_id, key), audited=False)
            raise
        kept_about = "" if kept_after_erasure else customer_id
        await self.store.write(
            lambda s: self._keep(s, org_id, key, encoded, customer_id, kept_about), audited=False
        )
        return encoded

    def _claim(
        self, session: Session, org_id: str, key: str, method: str, digest: str, now: datetime
    ) -> bytes | None:
        row = session.get(IdempotentRequest, (org_id, key)) or session.get(
            IdempotentRequest, (org_id, erased_key(key))
        )
        if row is not None and row.expires_at <= now:
            session.delete(row)
            session.flush()
            row = None
        if row is None:
            session.add(
                IdempotentRequest(
                    org_id=org_id,
                    idempotency_key=key,
                    method=method,
                    request_sha256=digest,
                    created_at=now,
                    expires_at=now + WINDOW,
                )
            )
            session.flush()
            return None
        if row.request_sha256 == ERASED:
            raise key_erased()
        if (row.method, row.request_sha256) != (method, digest):
            raise key_reused()
        if row.response is None:
            raise in_progress()
        return self._open(session, row)

    @staticmethod
    def _release(session: Session, org_id: str, key: str) -> None:
        session.execute(
            delete(IdempotentRequest).where(
                IdempotentRequest.org_id == org_id,
                IdempotentRequest.idempotency_key == key,
                IdempotentRequest.response.is_(None),
            )
        )

    def _keep(
        self,
        session: Session,
        org_id: str,
        key: str,
        encoded: bytes,
        customer_id: str,
        unless_erasing: str,
    ) -> None:
        """Keep `encoded` under the claimed key, unless the erasure of the
        customer `unless_erasing` began while the request ran: that erasure
        may already have dropped what was kept about them, so the key is
        left as it would have left it."""
        row = session.get(IdempotentRequest, (org_id, key))
        if row is None:
            return
        if unless_erasing and _erasure_began(session, org_id, unless_erasing):
            _forget(row)
            return
        row.customer_id = customer_id or None
        data_key = self.keys.customer_key(session, org_id, None, PURPOSE)
        sealed = envelope.seal(data_key.material, encoded, _aad(org_id, key))
        row.response = data_key.key_id.encode() + b":" + sealed

    def _open(self, session: Session, row: IdempotentRequest) -> bytes:
        assert row.response is not None
        key_id, _, sealed = row.response.partition(b":")
        key_row = session.get(models.DataKey, key_id.decode())
        if key_row is None:
            raise in_progress()  # cannot happen while the organisation exists
        return envelope.open_sealed(
            self.keys.open_key(key_row), sealed, _aad(row.org_id, row.idempotency_key)
        )


def _aad(org_id: str, key: str) -> bytes:
    return envelope.associated_data(
        "idempotent_response", org_id=org_id, key=hashlib.sha256(key.encode()).hexdigest()
    )


def prune(session: Session, now: datetime) -> int:
    """Drop the keys past their 24 h (the retention sweep); how many."""
    result = session.execute(delete(IdempotentRequest).where(IdempotentRequest.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)


def forget_customer(session: Session, org_id: str, customer_id: str) -> None:
    """An erasure drops the responses kept about the customer and their
    requests' digests; each key stays claimed, ERASED and by its digest,
    until it expires."""
    kept = session.scalars(
        select(IdempotentRequest).where(
            IdempotentRequest.org_id == org_id,
            IdempotentRequest.customer_id == customer_id,
            IdempotentRequest.request_sha256 != ERASED,
        )
    )
    for row in kept:
        _forget(row)


def _forget(row: IdempotentRequest) -> None:
    row.idempotency_key = erased_key(row.idempotency_key)
    row.response = None
    row.request_sha256 = ERASED


def _erasure_began(session: Session, org_id: str, customer_id: str) -> bool:
    """Whether the customer's erasure was requested (or done), read under
    their row lock, which the erasure's request takes too."""
    status = session.scalar(
        select(models.Customer.status)
        .where(models.Customer.org_id == org_id, models.Customer.customer_id == customer_id)
        .with_for_update()
    )
    return status is not None and status != "active"
