"""Verifying a webhook delivery (docs/webhooks.md, "Verifying a delivery").

A delivery is authentic when the HMAC-SHA256 of its raw body under the
endpoint's secret matches one `sha256=` value of `X-Identity-Signature` or
`X-Quantum-Signature` (two values during a secret rotation's overlap: one
match is enough); fresh when its `created_at` (inside the signed body) is
within the tolerance; new when its `id` was not seen before (delivery is at
least once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, MutableSet
from datetime import UTC, datetime, timedelta
from typing import Any

SIGNATURE_HEADERS = ("x-identity-signature", "x-quantum-signature")
DEFAULT_TOLERANCE = timedelta(minutes=5)


class WebhookVerificationError(ValueError):
    """The delivery is not authentic, not fresh, or already seen."""


def signature_valid(secrets: Iterable[str], raw_body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether any header value is the HMAC of the body under any of `secrets`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    received = [
        value.strip()
        for header in SIGNATURE_HEADERS
        for value in lowered.get(header, "").split(",")
        if value.strip()
    ]
    for secret in secrets:
        expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, value) for value in received):
            return True
    return False


def verify_webhook(
    secret: str | Iterable[str],
    raw_body: bytes,
    headers: Mapping[str, str],
    *,
    seen: MutableSet[str] | None = None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The event of an authentic, fresh and (with `seen`) new delivery.

    Raises WebhookVerificationError otherwise; adds the event id to `seen`."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not signature_valid(secrets, raw_body, headers):
        raise WebhookVerificationError("bad signature")
    event: dict[str, Any] = json.loads(raw_body)
    created = datetime.fromisoformat(str(event["created_at"]).replace("Z", "+00:00"))
    if abs((now or datetime.now(UTC)) - created) > tolerance:
        raise WebhookVerificationError("stale delivery")
    if seen is not None:
        if event["id"] in seen:
            raise WebhookVerificationError("replayed delivery")
        seen.add(event["id"])
    return event
