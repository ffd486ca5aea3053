"""CSV exports of the dashboard (customers, verifications).

- Bounded by creation time: `created_after` <= created_at < `created_before`,
  both required, at most `MAX_EXPORT_DAYS` apart (INVALID_FIELD otherwise),
  and at most `MAX_EXPORT_ROWS` rows (FAILED_PRECONDITION /
  EXPORT_TOO_LARGE: ask for a narrower range).
- Streamed end to end: the count is checked (and the export audited) first,
  then the header and one chunk per `BATCH_ROWS` rows, each batch read in its
  own short transaction by keyset (created_at, id): memory and transactions
  stay bounded whatever the row count. The server-streaming RPCs
  (StreamCustomersCsv, StreamVerificationsCsv) send each chunk as it is read
  and the gateway streams them as the HTTP body; the older unary RPCs join them.
- Personal data is masked as search masks it (name, email, phone; the NIK is
  only ever stored masked); no biometrics.
- Spreadsheet formula injection is neutralised: a cell that starts with
  `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`
  (OWASP's recommendation), whatever the column.
- Times are ISO 8601 in Asia/Jakarta (WIB, +07:00).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from identity_runtime.errors import FailedPrecondition, invalid_field
from services.kyc_tier import models
from services.kyc_tier.search import mask_email, mask_name, mask_phone

MAX_EXPORT_DAYS = 366
MAX_EXPORT_ROWS = 100_000
JAKARTA = ZoneInfo("Asia/Jakarta")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Bounds = tuple[datetime, datetime]


def bounds(after: datetime | None, before: datetime | None) -> Bounds:
    if after is None:
        raise invalid_field("created_after", "is required")
    if before is None:
        raise invalid_field("created_before", "is required")
    if before <= after:
        raise invalid_field("created_before", "must be after created_after")
    if before - after > timedelta(days=MAX_EXPORT_DAYS):
        raise invalid_field("created_before", f"at most {MAX_EXPORT_DAYS} days after created_after")
    return after, before


def neutralise(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def jakarta(value: datetime | None) -> str:
    return value.astimezone(JAKARTA).isoformat(timespec="seconds") if value else ""


BATCH_ROWS = 500


@dataclass(frozen=True)
class Table:
    """An exported table: its rows' model, order key, CSV header and cells."""

    model: Any
    id_column: Any
    header: tuple[str, ...]
    cells: Callable[[Any], list[object]]


Cursor = tuple[datetime, str]


def _lines(rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
    return out.getvalue().encode("utf-8")


def header(table: Table) -> bytes:
    return _lines([table.header])


def _query(table: Table, org_id: str, span: Bounds, equal: Mapping[str, str]) -> Select[Any]:
    model = table.model
    query = select(model).where(
        model.org_id == org_id, model.created_at >= span[0], model.created_at < span[1]
    )
    for column, value in equal.items():
        if value:
            query = query.where(getattr(model, column) == value)
    return query


def count(session: Session, table: Table, org_id: str, span: Bounds, **equal: str) -> int:
    """The organisation's rows created in `span` (equal to each non-empty
    filter); EXPORT_TOO_LARGE beyond the cap."""
    query = _query(table, org_id, span, equal)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    if total > MAX_EXPORT_ROWS:
        raise FailedPrecondition(
            f"more than {MAX_EXPORT_ROWS} rows: export a narrower date range",
            "EXPORT_TOO_LARGE",
            {"rows": total},
        )
    return total


def batch(
    session: Session,
    table: Table,
    org_id: str,
    span: Bounds,
    after: Cursor | None,
    equal: Mapping[str, str],
    size: int = BATCH_ROWS,
) -> tuple[bytes, Cursor | None]:
    """The CSV lines of the next `size` rows after `after`, oldest first, and
    the cursor past them (None after the last row)."""
    model = table.model
    query = _query(table, org_id, span, equal)
    if after is not None:
        query = query.where(
            or_(
                model.created_at > after[0],
                and_(model.created_at == after[0], table.id_column > after[1]),
            )
        )
    rows = list(session.scalars(query.order_by(model.created_at, table.id_column).limit(size)))
    if not rows:
        return b"", None
    last = rows[-1]
    cursor = (last.created_at, getattr(last, table.id_column.key)) if len(rows) == size else None
    return _lines(table.cells(r) for r in rows), cursor


def _customer_cells(r: models.Customer) -> list[object]:
    return [
        r.customer_id,
        r.external_id,
        mask_name(r.full_name or ""),
        r.nik_masked or "",
        mask_email(r.email or ""),
        mask_phone(r.phone or ""),
        r.tier,
        r.status,
        jakarta(r.created_at),
        jakarta(r.tier_updated_at),
    ]


def _verification_cells(r: models.Verification) -> list[object]:
    return [
        r.verification_id,
        r.customer_id,
        r.kind,
        r.outcome,
        " ".join(str(x.get("code", "")) for x in r.reasons or []),
        " ".join(f"{k}={val}" for k, val in sorted((r.scores or {}).items())),
        jakarta(r.created_at),
    ]


CUSTOMERS = Table(
    models.Customer,
    models.Customer.customer_id,
    ("customer_id", "external_id", "full_name", "nik", "email", "phone", "tier")
    + ("status", "created_at", "tier_updated_at"),
    _customer_cells,
)
VERIFICATIONS = Table(
    models.Verification,
    models.Verification.verification_id,
    ("verification_id", "customer_id", "kind", "outcome", "reasons", "scores", "created_at"),
    _verification_cells,
)
