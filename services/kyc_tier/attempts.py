"""Listing attempts (including refused ones), newest first, keyset-paginated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from services.kyc_tier import models, records
from services.kyc_tier.customers import decode_page_token, encode_page_token, page_size
from services.kyc_tier.ports import Reason


@dataclass(frozen=True)
class AttemptView:
    attempt_id: str
    customer_id: str
    kind: str
    outcome: str
    reasons: tuple[Reason, ...]
    verification_id: str
    request_id: str
    created_at: datetime


@dataclass(frozen=True)
class AttemptFilter:
    customer_id: str = ""
    kind: str = ""
    outcome: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None


def list_attempts(
    session: Session, org_id: str, filters: AttemptFilter, size: int, token: str
) -> tuple[list[AttemptView], str]:
    if filters.customer_id:
        records.load_customer(session, org_id, filters.customer_id)
    limit = page_size(size)
    query = select(models.Attempt).where(models.Attempt.org_id == org_id)
    if filters.customer_id:
        query = query.where(models.Attempt.customer_id == filters.customer_id)
    if filters.kind:
        query = query.where(models.Attempt.kind == filters.kind)
    if filters.outcome:
        query = query.where(models.Attempt.outcome == filters.outcome)
    if filters.start_time is not None:
        query = query.where(models.Attempt.created_at >= filters.start_time)
    if filters.end_time is not None:
        query = query.where(models.Attempt.created_at < filters.end_time)
    if token:
        created, last_id = decode_page_token(token)
        query = query.where(
            or_(
                models.Attempt.created_at < created,
                and_(models.Attempt.created_at == created, models.Attempt.attempt_id < last_id),
            )
        )
    rows = list(
        session.scalars(
            query.order_by(
                models.Attempt.created_at.desc(), models.Attempt.attempt_id.desc()
            ).limit(limit + 1)
        )
    )
    next_token = (
        encode_page_token(rows[limit - 1].created_at, rows[limit - 1].attempt_id)
        if len(rows) > limit
        else ""
    )
    return [
        AttemptView(
            attempt_id=r.attempt_id,
            customer_id=r.customer_id,
            kind=r.kind,
            outcome=r.outcome,
            reasons=tuple(Reason(x.get("code", ""), x.get("message", "")) for x in r.reasons),
            verification_id=r.verification_id or "",
            request_id=r.request_id,
            created_at=r.created_at,
        )
        for r in rows[:limit]
    ], next_token
