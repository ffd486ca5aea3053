"""Rows an organisation owns, looked up by their id within the caller's
organisation: another organisation's id reads exactly like an unknown one
(the caller turns the `None` into its own NOT_FOUND reason)."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.kyc_tier.models import Base

Row = TypeVar("Row", bound=Base)


def owned(
    session: Session, model: type[Row], key_column: str, key: str, org_id: str, *, for_update: bool
) -> Row | None:
    """The row of `model` whose `key_column` is `key`, when its `org_id` is
    the caller's organisation: another organisation's row reads as missing.
    `for_update` locks the row for the rest of the transaction."""
    columns = model.__table__.c
    query = select(model).where(columns[key_column] == key, columns.org_id == org_id)
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)
