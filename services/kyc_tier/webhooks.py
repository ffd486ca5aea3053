"""Partner webhook endpoints: registered, listed and tested per organisation.

Each endpoint has its own signing secret, generated here, shown once in the
create response and kept sealed (AES-256-GCM under the organisation's
"webhook" data key, bound to the endpoint id). A delivery is a JSON document
`{"id", "type", "created_at", "data"}` signed with HMAC-SHA256 over the raw
body and sent as both `X-Identity-Signature: sha256=<hex>` and
`X-Quantum-Signature: sha256=<hex>` (seed 001); the event id and time are
inside the signed body so a receiver can reject stale or replayed deliveries.

Targets are checked twice: the URL when it is registered (scheme, host, a
literal address), and every resolved address at connect time (see
`GuardedBackend`), so a name that later resolves to a private address is
refused too. Loopback is allowed only when `allow_loopback` is set (the
one-machine run; production refuses that setting). No redirect is followed
and at most `RESPONSE_CAP` bytes of a response body are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import random
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpcore
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from identity_crypto import envelope
from identity_crypto.datakeys import DataKeyStore
from identity_runtime.errors import FailedPrecondition, NotFound, invalid_field, require
from identity_runtime.logs import get_logger
from identity_store.types import utcnow
from services.kyc_tier import models, outbox, signing
from services.kyc_tier.store import Store

WEBHOOK_PURPOSE = "webhook"
EVENT_TYPES = frozenset(
    {
        "verification.completed",
        "kyc.tier_changed",
        "stepup.decided",
        "review.decided",
        "customer.erased",
    }
)
TEST_EVENT = "webhook.test"
MAX_WEBHOOKS_PER_ORG = 20
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500
# Bytes of a receiver's response body read at most (the rest is discarded).
RESPONSE_CAP = 4096
SECRET_PREFIX = "whsec_"
# A rotated-out secret keeps signing for this long (default, at most).
DEFAULT_OVERLAP_SECONDS = 86_400
MAX_OVERLAP_SECONDS = 7 * 86_400
# Deliveries the log route answers (newest first).
DELIVERY_LOG_SIZE = 100

log = get_logger("identity.kyc_tier.webhooks")


class TargetRefused(Exception):
    """The target resolves to an address this deployment does not deliver to."""


def address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, loopback: bool) -> bool:
    """Only public unicast addresses, plus loopback when `loopback` is set."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return loopback
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def check_url(url: str, allow_loopback: bool) -> str:
    """The URL if it may be registered, else INVALID_FIELD naming `url` (never its value)."""
    require(bool(url), "url", "is required")
    require(len(url) <= MAX_URL_LENGTH, "url", f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise invalid_field("url", "is not a valid URL") from exc
    require(parts.scheme in ("https", "http"), "url", "must be an https URL")
    require(parts.scheme == "https" or allow_loopback, "url", "must be an https URL")
    host = parts.hostname or ""
    require(bool(host), "url", "must name a host")
    require(not parts.username and not parts.password, "url", "must not carry credentials")
    require(not parts.fragment, "url", "must not carry a fragment")
    require(port is None or 0 < port < 65536, "url", "has an invalid port")
    try:
        literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        require(
            address_allowed(literal, allow_loopback),
            "url",
            "must not target a private, loopback or link-local address",
        )
    elif host.lower() == "localhost" or host.lower().endswith(".localhost"):
        require(allow_loopback, "url", "must not target a private, loopback or link-local address")
    return url


def check_events(events: Iterable[str]) -> list[str]:
    chosen = sorted(set(events))
    require(bool(chosen), "events", "must name at least one event type")
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    require(not unknown, "events", "names an unknown event type")
    return chosen


# -- Sending ------------------------------------------------------------------


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses it if any address is not allowed, and
    connects to a checked address (so DNS cannot swap in a private one between
    the check and the connection). TLS still verifies the original host name."""

    def __init__(self, allow_loopback: bool):
        self.allow_loopback = allow_loopback
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError("dns_failure") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses or not all(address_allowed(a, self.allow_loopback) for a in addresses):
            raise TargetRefused("address_refused")
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("address_refused")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    http_status: int
    latency_ms: int
    # "" when delivered; else an error class: timeout, connection_refused,
    # address_refused, dns_failure, tls_error, http_status, network_error.
    error: str


class Sender:
    """Posts one signed document; never follows a redirect (a 3xx is a failure)."""

    def __init__(self, allow_loopback: bool, timeout_seconds: float):
        self.allow_loopback = allow_loopback
        self.timeout_seconds = timeout_seconds

    async def post(
        self, url: str, body: bytes, secrets: Sequence[bytes], event_id: str
    ) -> DeliveryResult:
        headers = [
            (b"Content-Type", b"application/json"),
            (b"User-Agent", b"IdentityPlatform-Webhooks/1"),
            (b"X-Identity-Event-Id", event_id.encode()),
        ] + [(k.encode(), v.encode()) for k, v in signing.signature_headers(secrets, body).items()]
        timeout = self.timeout_seconds
        started = time.perf_counter()
        status = 0
        error = ""
        try:
            async with httpcore.AsyncConnectionPool(
                network_backend=GuardedBackend(self.allow_loopback), max_connections=1
            ) as pool:
                async with pool.stream(
                    "POST",
                    url,
                    headers=headers,
                    content=body,
                    extensions={
                        "timeout": {
                            "connect": timeout,
                            "read": timeout,
                            "write": timeout,
                            "pool": timeout,
                        }
                    },
                ) as response:
                    status = response.status
                    read = 0
                    async for chunk in response.aiter_stream():
                        read += len(chunk)
                        if read >= RESPONSE_CAP:
                            break
        except TargetRefused:
            error = "address_refused"
        except httpcore.TimeoutException:
            error = "timeout"
        except httpcore.ConnectError as exc:
            text = str(exc)
            if "dns_failure" in text:
                error = "dns_failure"
            elif "SSL" in text or "certificate" in text.lower():
                error = "tls_error"
            else:
                error = "connection_refused"
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol):
            error = "network_error"
        latency_ms = int((time.perf_counter() - started) * 1000)
        delivered = not error and 200 <= status < 300
        if not error and not delivered:
            error = "http_status"
        return DeliveryResult(delivered, status, latency_ms, error)


def event_document(
    event_type: str, created_at: datetime, data: dict[str, Any]
) -> tuple[str, bytes]:
    """(event id, the exact body that is signed and sent)."""
    event_id = f"evt_{uuid.uuid4().hex}"
    document = {
        "id": event_id,
        "type": event_type,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return event_id, json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


# -- The flow -----------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRecord:
    webhook_id: str
    url: str
    events: tuple[str, ...]
    active: bool
    description: str
    created_at: datetime


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: WebhookRecord
    # Shown once; only its sealed form is kept.
    signing_secret: str


def _record(row: models.Webhook) -> WebhookRecord:
    return WebhookRecord(
        row.webhook_id, row.url, tuple(row.events), row.active, row.description, row.created_at
    )


@dataclass(frozen=True)
class AttemptView:
    attempted_at: datetime
    http_status: int
    latency_ms: int
    error: str


@dataclass(frozen=True)
class DeliveryView:
    delivery_id: str
    event_id: str
    event_type: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None
    attempt_log: tuple[AttemptView, ...]


def _delivery_view(session: Session, row: models.WebhookDelivery) -> DeliveryView:
    attempts = session.scalars(
        select(models.WebhookAttempt)
        .where(models.WebhookAttempt.delivery_id == row.delivery_id)
        .order_by(models.WebhookAttempt.id)
    )
    return DeliveryView(
        row.delivery_id,
        row.event_id,
        row.event_type,
        row.state,
        row.attempts,
        row.created_at,
        row.next_attempt_at if row.state == "pending" else None,
        row.finished_at,
        tuple(AttemptView(a.attempted_at, a.http_status, a.latency_ms, a.error) for a in attempts),
    )


def _aad(org_id: str, webhook_id: str) -> bytes:
    return envelope.associated_data("webhook_secret", org_id=org_id, webhook_id=webhook_id)


@dataclass
class WebhookFlow:
    store: Store
    keys: DataKeyStore
    sender: Sender

    @property
    def allow_loopback(self) -> bool:
        return self.sender.allow_loopback

    async def list(self, org_id: str) -> list[WebhookRecord]:
        def work(session: Session) -> list[WebhookRecord]:
            rows = session.scalars(
                select(models.Webhook)
                .where(models.Webhook.org_id == org_id)
                .order_by(models.Webhook.created_at, models.Webhook.webhook_id)
            )
            return [_record(r) for r in rows]

        return await self.store.read(work)

    async def create(
        self, org_id: str, url: str, events: Iterable[str], description: str
    ) -> CreatedWebhook:
        url = check_url(url.strip(), self.allow_loopback)
        chosen = check_events(events)
        require(
            len(description) <= MAX_DESCRIPTION_LENGTH,
            "description",
            f"must be at most {MAX_DESCRIPTION_LENGTH} characters",
        )
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)

        def work(session: Session) -> WebhookRecord:
            count = len(
                list(
                    session.scalars(
                        select(models.Webhook.webhook_id).where(models.Webhook.org_id == org_id)
                    )
                )
            )
            require(
                count < MAX_WEBHOOKS_PER_ORG,
                "url",
                f"an organisation may register at most {MAX_WEBHOOKS_PER_ORG} endpoints",
            )
            webhook_id = f"whk_{uuid.uuid4().hex}"
            row = models.Webhook(
                webhook_id=webhook_id,
                org_id=org_id,
                url=url,
                events=chosen,
                secret_sealed=self._seal(session, org_id, webhook_id, secret),
                active=True,
                description=description,
                created_at=utcnow(),
            )
            session.add(row)
            outbox.record(
                session,
                org_id,
                "webhook.create",
                webhook_id,
                "created",
                details={"events": ",".join(chosen)},
            )
            session.flush()
            return _record(row)

        return CreatedWebhook(await self.store.write(work), secret)

    def _seal(self, session: Session, org_id: str, webhook_id: str, secret: str) -> bytes:
        key = self.keys.customer_key(session, org_id, None, WEBHOOK_PURPOSE)
        sealed = envelope.seal(key.material, secret.encode(), _aad(org_id, webhook_id))
        return key.key_id.encode() + b":" + sealed

    def _open(self, session: Session, row: models.Webhook, blob: bytes) -> bytes:
        key_id, _, sealed = blob.partition(b":")
        key_row = session.get(models.DataKey, key_id.decode())
        if key_row is None:
            raise NotFound("webhook secret is gone", "WEBHOOK_NOT_FOUND")
        return envelope.open_sealed(
            self.keys.open_key(key_row), sealed, _aad(row.org_id, row.webhook_id)
        )

    def open_secrets(
        self, session: Session, row: models.Webhook, now: datetime | None = None
    ) -> tuple[bytes, ...]:
        """The secrets a delivery is signed with: the current one, and the
        previous one while a rotation's overlap window lasts."""
        found = [self._open(session, row, row.secret_sealed)]
        expires = row.previous_secret_expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=utcnow().tzinfo)
        if row.previous_secret_sealed is not None and expires is not None:
            if (now or utcnow()) < expires:
                found.append(self._open(session, row, row.previous_secret_sealed))
        return tuple(found)

    def _owned(self, session: Session, org_id: str, webhook_id: str) -> models.Webhook:
        require(bool(webhook_id), "webhook_id", "is required")
        row = session.get(models.Webhook, webhook_id)
        if row is None or row.org_id != org_id:
            raise NotFound("no such webhook", "WEBHOOK_NOT_FOUND")
        return row

    async def rotate(
        self, org_id: str, webhook_id: str, overlap_seconds: int
    ) -> tuple[CreatedWebhook, datetime]:
        """A new secret (shown once); the current one signs too for the overlap."""
        overlap = overlap_seconds or DEFAULT_OVERLAP_SECONDS
        require(
            0 < overlap <= MAX_OVERLAP_SECONDS,
            "overlap_seconds",
            f"must be between 1 and {MAX_OVERLAP_SECONDS}",
        )
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)

        def work(session: Session) -> tuple[WebhookRecord, datetime]:
            row = self._owned(session, org_id, webhook_id)
            now = utcnow()
            row.previous_secret_sealed = row.secret_sealed
            row.previous_secret_expires_at = now + timedelta(seconds=overlap)
            row.secret_sealed = self._seal(session, org_id, webhook_id, secret)
            outbox.record(
                session,
                org_id,
                "webhook.rotate_secret",
                webhook_id,
                "rotated",
                details={"overlap_seconds": overlap},
            )
            return _record(row), row.previous_secret_expires_at

        record, expires = await self.store.write(work)
        return CreatedWebhook(record, secret), expires

    async def deliveries(self, org_id: str, webhook_id: str) -> tuple[DeliveryView, ...]:
        """The endpoint's most recent deliveries (newest first), with attempts."""

        def work(session: Session) -> tuple[DeliveryView, ...]:
            self._owned(session, org_id, webhook_id)
            rows = list(
                session.scalars(
                    select(models.WebhookDelivery)
                    .where(models.WebhookDelivery.webhook_id == webhook_id)
                    .order_by(
                        models.WebhookDelivery.created_at.desc(),
                        models.WebhookDelivery.delivery_id.desc(),
                    )
                    .limit(DELIVERY_LOG_SIZE)
                )
            )
            return tuple(_delivery_view(session, r) for r in rows)

        return await self.store.read(work)

    async def redeliver(self, org_id: str, webhook_id: str, delivery_id: str) -> DeliveryView:
        """Queue the delivery again now: the same event id and body."""
        require(bool(delivery_id), "delivery_id", "is required")

        def work(session: Session) -> DeliveryView:
            hook = self._owned(session, org_id, webhook_id)
            row = session.get(models.WebhookDelivery, delivery_id)
            if row is None or row.webhook_id != webhook_id:
                raise NotFound("no such delivery", "WEBHOOK_DELIVERY_NOT_FOUND")
            if not hook.active:
                raise FailedPrecondition(
                    "the webhook endpoint is disabled: enable it first", "WEBHOOK_DISABLED"
                )
            now = utcnow()
            row.state, row.next_attempt_at = "pending", now
            row.finished_at, row.claimed_until = None, None
            outbox.record(
                session,
                org_id,
                "webhook.redeliver",
                webhook_id,
                "queued",
                details={"delivery_id": delivery_id},
            )
            session.flush()
            return _delivery_view(session, row)

        return await self.store.write(work)

    async def set_active(self, org_id: str, webhook_id: str, active: bool) -> WebhookRecord:
        def work(session: Session) -> WebhookRecord:
            row = self._owned(session, org_id, webhook_id)
            now = utcnow()
            row.active = active
            if active:
                row.consecutive_failures = 0
                row.disabled_at = None
            else:
                row.disabled_at = now
                give_up_pending(session, webhook_id, now)
            outbox.record(
                session,
                org_id,
                "webhook.enable" if active else "webhook.disable",
                webhook_id,
                "enabled" if active else "disabled",
            )
            return _record(row)

        return await self.store.write(work)

    async def test(self, org_id: str, webhook_id: str) -> DeliveryResult:
        """Send a signed `webhook.test` event now; report the receiver's answer."""

        def load(session: Session) -> tuple[str, tuple[bytes, ...]]:
            row = self._owned(session, org_id, webhook_id)
            return row.url, self.open_secrets(session, row)

        url, secret = await self.store.read(load)
        event_id, body = event_document(TEST_EVENT, utcnow(), {"webhook_id": webhook_id})
        result = await self.sender.post(url, body, secret, event_id)

        def audit(session: Session) -> None:
            outbox.record(
                session,
                org_id,
                "webhook.test",
                webhook_id,
                "delivered" if result.delivered else "failed",
                details={"http_status": result.http_status, "error": result.error},
            )

        await self.store.write(audit)
        return result


# -- Events and their delivery --------------------------------------------------

# Retries: exponential backoff from BACKOFF_BASE, capped at BACKOFF_CAP, with
# full jitter over the upper half; a delivery is given up after HORIZON.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
HORIZON = timedelta(hours=72)
CLAIM_BATCH = 50


def emit(session: Session, org_id: str, event_type: str, data: dict[str, Any]) -> str | None:
    """Queue `event_type` for every active endpoint of the organisation that
    subscribed to it, in the caller's transaction (so the event commits with
    the change it announces, or not at all). `data`: ids and masked values
    only. The event id, or None when no endpoint wants it."""
    rows = [
        w
        for w in session.scalars(
            select(models.Webhook).where(
                models.Webhook.org_id == org_id, models.Webhook.active.is_(True)
            )
        )
        if event_type in (w.events or [])
    ]
    if not rows:
        return None
    now = utcnow()
    event_id, body = event_document(event_type, now, data)
    for row in rows:
        session.add(
            models.WebhookDelivery(
                delivery_id=f"whd_{uuid.uuid4().hex}",
                event_id=event_id,
                webhook_id=row.webhook_id,
                org_id=org_id,
                event_type=event_type,
                body=body,
                state="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return event_id


def give_up_pending(session: Session, webhook_id: str, now: datetime) -> None:
    session.execute(
        update(models.WebhookDelivery)
        .where(
            models.WebhookDelivery.webhook_id == webhook_id,
            models.WebhookDelivery.state == "pending",
        )
        .values(state="failed", finished_at=now)
    )


def backoff(attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
    """The wait after the `attempts`-th failure: base * 2^(attempts-1), capped,
    then a uniform draw in its upper half (jitter spreads a burst of retries)."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, attempts - 1)))
    return ceiling * (0.5 + 0.5 * rand())


@dataclass(frozen=True)
class Due:
    delivery_id: str
    webhook_id: str
    org_id: str
    event_id: str
    url: str
    secrets: tuple[bytes, ...]
    body: bytes


class Dispatcher:
    """Sends due deliveries at least once: claims a batch under a lease (FOR
    UPDATE SKIP LOCKED on PostgreSQL), posts each outside the transaction,
    records the attempt, and schedules a retry with backoff or finishes it.
    An endpoint failing `disable_after` times in a row is disabled (audited)
    and its pending deliveries are given up."""

    def __init__(
        self,
        flow: WebhookFlow,
        disable_after: int,
        poll_seconds: float = 1.0,
        lease_seconds: float = 60.0,
    ):
        self.flow = flow
        self.disable_after = disable_after
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the dispatcher must outlive any single failure
                log.exception("webhook dispatch failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()

    def _claim(self, session: Session, now: datetime) -> list[Due]:
        query = (
            select(models.WebhookDelivery)
            .where(
                models.WebhookDelivery.state == "pending",
                models.WebhookDelivery.next_attempt_at <= now,
                or_(
                    models.WebhookDelivery.claimed_until.is_(None),
                    models.WebhookDelivery.claimed_until < now,
                ),
            )
            .order_by(models.WebhookDelivery.next_attempt_at, models.WebhookDelivery.delivery_id)
            .limit(CLAIM_BATCH)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        due: list[Due] = []
        for row in session.scalars(query):
            row.claimed_until = now + self.lease
            hook = session.get(models.Webhook, row.webhook_id)
            if hook is None or not hook.active:
                row.state, row.finished_at = "failed", now
                continue
            secret = self.flow.open_secrets(session, hook, now)
            due.append(
                Due(
                    row.delivery_id,
                    row.webhook_id,
                    row.org_id,
                    row.event_id,
                    hook.url,
                    secret,
                    row.body,
                )
            )
        return due

    async def flush(self, now: datetime | None = None) -> int:
        """One pass over the deliveries due at `now` (default: the time); the
        number delivered."""
        at = now or utcnow()
        batch = await self.flow.store.read(lambda s: self._claim(s, at))
        delivered = 0
        for due in batch:
            result = await self.flow.sender.post(due.url, due.body, due.secrets, due.event_id)
            await self.flow.store.write(
                functools.partial(self._settle, due=due, result=result, now=at)
            )
            delivered += int(result.delivered)
        return delivered

    def _settle(self, session: Session, due: Due, result: DeliveryResult, now: datetime) -> None:
        row = session.get(models.WebhookDelivery, due.delivery_id)
        hook = session.get(models.Webhook, due.webhook_id)
        if row is None or hook is None:
            return
        session.add(
            models.WebhookAttempt(
                delivery_id=row.delivery_id,
                attempted_at=now,
                http_status=result.http_status,
                latency_ms=result.latency_ms,
                error=result.error,
            )
        )
        row.attempts += 1
        row.claimed_until = None
        if result.delivered:
            row.state, row.finished_at = "delivered", now
            hook.consecutive_failures = 0
            return
        hook.consecutive_failures += 1
        retry_at = now + backoff(row.attempts)
        created = row.created_at
        if created.tzinfo is None:
            created = created.replace(tzinfo=now.tzinfo)
        if retry_at - created > HORIZON:
            row.state, row.finished_at = "failed", now
        else:
            row.next_attempt_at = retry_at
        if hook.active and hook.consecutive_failures >= self.disable_after:
            hook.active = False
            hook.disabled_at = now
            give_up_pending(session, hook.webhook_id, now)
            outbox.record(
                session,
                hook.org_id,
                "webhook.disable",
                hook.webhook_id,
                "disabled",
                details={"consecutive_failures": hook.consecutive_failures},
                actor="service:kyc-tier",
            )
