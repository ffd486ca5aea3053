"""CSV exports of the dashboard (customers, verifications).

- Bounded by creation time: `created_after` <= created_at < `created_before`,
  both required, at most `MAX_EXPORT_DAYS` apart (INVALID_FIELD otherwise),
  and at most `MAX_EXPORT_ROWS` rows (FAILED_PRECONDITION /
  EXPORT_TOO_LARGE: ask for a narrower range).
- Rows are read in batches (`yield_per`) and written as they come; the RPC
  is unary, so the whole file is one response body.
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
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
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


def _write(header: list[str], rows: Iterable[list[object]]) -> tuple[bytes, int]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
        count += 1
    return out.getvalue().encode("utf-8"), count


def _check_size(session: Session, query: Select[Any]) -> None:
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    if (total or 0) > MAX_EXPORT_ROWS:
        raise FailedPrecondition(
            f"more than {MAX_EXPORT_ROWS} rows: export a narrower date range",
            "EXPORT_TOO_LARGE",
            {"rows": total},
        )


def _rows(
    session: Session, model: Any, id_column: Any, org_id: str, span: Bounds, **equal: str
) -> Iterator[Any]:
    """The organisation's rows created in `span` (and equal to each non-empty
    filter), oldest first, read in batches; EXPORT_TOO_LARGE beyond the cap."""
    query = select(model).where(
        model.org_id == org_id, model.created_at >= span[0], model.created_at < span[1]
    )
    for column, value in equal.items():
        if value:
            query = query.where(getattr(model, column) == value)
    _check_size(session, query)
    ordered = query.order_by(model.created_at, id_column).execution_options(yield_per=500)
    return iter(session.scalars(ordered))


def customers_csv(session: Session, org_id: str, tier: str, span: Bounds) -> tuple[bytes, int]:
    c = models.Customer
    rows = _rows(session, c, c.customer_id, org_id, span, tier=tier)
    header = ["customer_id", "external_id", "full_name", "nik", "email", "phone", "tier"]
    header += ["status", "created_at", "tier_updated_at"]
    return _write(
        header,
        (
            [
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
            for r in rows
        ),
    )


def verifications_csv(session: Session, org_id: str, kind: str, span: Bounds) -> tuple[bytes, int]:
    v = models.Verification
    rows = _rows(session, v, v.verification_id, org_id, span, kind=kind)
    header = ["verification_id", "customer_id", "kind", "outcome", "reasons", "scores"]
    header += ["created_at"]
    return _write(
        header,
        (
            [
                r.verification_id,
                r.customer_id,
                r.kind,
                r.outcome,
                " ".join(str(x.get("code", "")) for x in r.reasons or []),
                " ".join(f"{k}={val}" for k, val in sorted((r.scores or {}).items())),
                jakarta(r.created_at),
            ]
            for r in rows
        ),
    )
