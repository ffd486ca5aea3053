"""Listing newest first, a page at a time (keyset pagination).

The position token here is the creation time and id of the last item of the
page, so a page never repeats or skips rows inserted meanwhile. Partners never
see it bare: the servicer side (identity_runtime.listing) wraps it in a token
bound to the listing, the organisation and the filter (AIP-158), and unwraps
it before a listing is asked.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from identity_runtime.errors import invalid_field

T = TypeVar("T")
MAX_PAGE = 200
DEFAULT_PAGE = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    # "" on the last page.
    next_page_token: str


def page_size(requested: int) -> int:
    if requested < 0:
        raise invalid_field("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE, MAX_PAGE)


def encode_page_token(created_at: datetime, item_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[datetime, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        created, item_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created), str(item_id)
    except (ValueError, TypeError, RecursionError):
        # RecursionError: a token of deeply nested JSON arrays.
        raise invalid_field("page_token", "is not a token this API returned") from None


def newest_first(
    session: Session,
    query: Select[Any],
    created_at: InstrumentedAttribute[datetime],
    item_id: InstrumentedAttribute[str],
    size: int,
    token: str,
) -> Page[Any]:
    """One page of `query`'s rows, ordered by (created_at, item_id) descending."""
    limit = page_size(size)
    if token:
        last_created, last_id = decode_page_token(token)
        query = query.where(
            or_(created_at < last_created, and_(created_at == last_created, item_id < last_id))
        )
    rows = list(session.scalars(query.order_by(created_at.desc(), item_id.desc()).limit(limit + 1)))
    next_token = ""
    if len(rows) > limit:
        last = rows[limit - 1]
        next_token = encode_page_token(getattr(last, created_at.key), getattr(last, item_id.key))
    return Page(rows[:limit], next_token)
