"""Webhook events, queued in the transaction of the change they announce.

`emit` writes one delivery per subscribed endpoint in the caller's
transaction, so an event commits with its change or not at all. `data`
holds ids and masked values only.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_store.types import utcnow
from services.kyc_tier import models
from services.kyc_tier.tiers import STEP_UP
from services.kyc_tier.webhook_targets import event_document, timestamp

DISABLED_EVENT = "endpoint.disabled"
WITHDRAWN_EVENT = "review.withdrawn"
# Why a review item was withdrawn: the only cause there is (withdrawals.py).
WITHDRAWN_REASON = "customer_erased"


def _subscribed(session: Session, org_id: str, event_type: str) -> list[models.Webhook]:
    return [
        w
        for w in session.scalars(
            select(models.Webhook).where(
                models.Webhook.org_id == org_id, models.Webhook.active.is_(True)
            )
        )
        if event_type in (w.events or [])
    ]


def _queue(
    session: Session,
    org_id: str,
    rows: list[models.Webhook],
    event_type: str,
    data: dict[str, Any],
) -> str | None:
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


def emit(session: Session, org_id: str, event_type: str, data: dict[str, Any]) -> str | None:
    """Queue `event_type` for every active endpoint of the organisation that
    subscribed to it, in the caller's transaction (so the event commits with
    the change it announces, or not at all). `data`: ids and masked values
    only. The event id, or None when no endpoint wants it."""
    return _queue(session, org_id, _subscribed(session, org_id, event_type), event_type, data)


def announce_disabled(session: Session, hook: models.Webhook, failures: int) -> str | None:
    """Tell the organisation an endpoint was disabled: `endpoint.disabled` to
    its default endpoint when that is another, active one (whatever it
    subscribed to); else to its other active endpoints subscribed to it."""
    org = session.get(models.Org, hook.org_id)
    default_id = (org.default_webhook_id if org is not None else None) or ""
    default = session.get(models.Webhook, default_id) if default_id else None
    if (
        default is not None
        and default.webhook_id != hook.webhook_id
        and default.active
        and default.deleted_at is None
    ):
        targets = [default]
    else:
        targets = [
            w
            for w in _subscribed(session, hook.org_id, DISABLED_EVENT)
            if w.webhook_id != hook.webhook_id
        ]
    return _queue(
        session,
        hook.org_id,
        targets,
        DISABLED_EVENT,
        {"webhook_id": hook.webhook_id, "reason": "failures", "consecutive_failures": failures},
    )


def announce_verification(session: Session, row: models.Verification) -> None:
    """A recorded verification: `stepup.decided` for a step-up (naming the
    reference it was matched against: the enrolled one or a partner image),
    else `verification.completed`."""
    payload = {
        "customer_id": row.customer_id,
        "verification_id": row.verification_id,
        "kind": row.kind,
        "outcome": row.outcome,
    }
    if row.kind == STEP_UP:
        payload["reference_source"] = str(row.details.get("reference", ""))
    emit(
        session,
        row.org_id,
        "stepup.decided" if row.kind == STEP_UP else "verification.completed",
        payload,
    )


def announce_tier_change(session: Session, row: models.TierEvent) -> None:
    emit(
        session,
        row.org_id,
        "kyc.tier_changed",
        {
            "customer_id": row.customer_id,
            "tier_event_id": row.event_id,
            "from_tier": row.from_tier,
            "to_tier": row.to_tier,
            "cause": row.cause,
            "verification_id": row.verification_id or "",
        },
    )


def announce_withdrawn(session: Session, item: models.ReviewItem, erasure_id: str) -> None:
    """A review item an erasure closed without a decision: `review.withdrawn`,
    in the withdrawal's transaction (so once: a redone step finds nothing
    pending). Ids only, as `review.decided` and `customer.erased` carry:
    nothing of the erased customer but their id, and no verdict (none is
    recorded)."""
    assert item.decided_at is not None
    emit(
        session,
        item.org_id,
        WITHDRAWN_EVENT,
        {
            "review_id": item.review_id,
            "customer_id": item.customer_id,
            "status": item.status,
            "reason": WITHDRAWN_REASON,
            "erasure_id": erasure_id,
            "withdrawn_at": timestamp(item.decided_at),
        },
    )
