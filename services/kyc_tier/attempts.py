"""Listing attempts (including refused ones), newest first, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.kyc_tier import models, records
from services.kyc_tier.paging import Page, newest_first
from services.kyc_tier.ports import Reason
from services.kyc_tier.reason_rows import with_stored_reasons


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
) -> Page[AttemptView]:
    if filters.customer_id:
        records.load_customer(session, org_id, filters.customer_id)
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
    page = newest_first(
        session, query, models.Attempt.created_at, models.Attempt.attempt_id, size, token
    )
    return Page([_view(r) for r in page.items], page.next_page_token)


def _view(row: models.Attempt) -> AttemptView:
    return with_stored_reasons(AttemptView, row, verification_id=row.verification_id or "")
