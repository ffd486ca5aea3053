"""Where webhooks may go and how one is sent.

The target policy and the guarded connection are the platform's one egress
policy (`identity_runtime.egress`, shared with face-match's callbacks):
the URL is checked when it is registered (scheme, host, a literal address),
and every resolved address at connect time, with the connection pinned to
the checked address, so a name that later resolves to a private address is
refused too. Loopback is allowed only when `allow_loopback` is set (the
one-machine run; production refuses that setting). No redirect is followed
and at most `RESPONSE_CAP` bytes of a response body are read.

A delivery is a JSON document `{"id", "type", "created_at", "data"}`, signed
with HMAC-SHA256 over the raw body and sent as both `X-Identity-Signature`
and `X-Quantum-Signature` (seed 001), one `sha256=` value per secret.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from identity_runtime import signing
from identity_runtime.egress import (
    MAX_URL_LENGTH,
    RESPONSE_CAP,
    DeliveryResult,
    GuardedBackend,
    GuardedPoster,
    TargetRefused,
    address_allowed,
    check_url,
)
from identity_runtime.errors import require

__all__ = [
    "EVENT_TYPES",
    "MAX_URL_LENGTH",
    "RESPONSE_CAP",
    "TEST_EVENT",
    "DeliveryResult",
    "GuardedBackend",
    "Sender",
    "TargetRefused",
    "address_allowed",
    "check_events",
    "check_url",
    "event_document",
    "timestamp",
]

EVENT_TYPES = frozenset(
    {
        "verification.completed",
        "kyc.tier_changed",
        "stepup.decided",
        "review.decided",
        "review.withdrawn",
        "customer.erased",
        "endpoint.disabled",
    }
)
TEST_EVENT = "webhook.test"


def check_events(events: Iterable[str]) -> list[str]:
    chosen = sorted(set(events))
    require(bool(chosen), "events", "must name at least one event type")
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    require(not unknown, "events", "names an unknown event type")
    return chosen


class Sender:
    """Posts one signed webhook document through the guarded poster."""

    def __init__(self, poster: GuardedPoster):
        self.poster = poster

    @property
    def allow_loopback(self) -> bool:
        return self.poster.allow_loopback

    @property
    def timeout_seconds(self) -> float:
        """When an attempt ends at the latest."""
        return self.poster.timeout_seconds

    async def post(
        self, url: str, body: bytes, secrets: Sequence[bytes], event_id: str
    ) -> DeliveryResult:
        headers = [
            (b"Content-Type", b"application/json"),
            (b"User-Agent", b"IdentityPlatform-Webhooks/1"),
            (b"X-Identity-Event-Id", event_id.encode()),
        ] + [(k.encode(), v.encode()) for k, v in signing.signature_headers(secrets, body).items()]
        return await self.poster.post(url, body, headers)


def timestamp(value: datetime) -> str:
    """An instant as an event shows it: ISO 8601 in UTC with a `Z` (a naive
    value, as SQLite hands one back, is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_document(
    event_type: str, created_at: datetime, data: dict[str, Any]
) -> tuple[str, bytes]:
    """(event id, the exact body that is signed and sent)."""
    event_id = f"evt_{uuid.uuid4().hex}"
    document = {
        "id": event_id,
        "type": event_type,
        "created_at": timestamp(created_at),
        "data": data,
    }
    return event_id, json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
