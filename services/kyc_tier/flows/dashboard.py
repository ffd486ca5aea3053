"""The analyst dashboard's reads (internal scope or an analyst session):
customer search (search.py), the review queue, the tier-event feed and the
CSV exports. Everything is scoped to the caller's organisation; searches
and exports are audited under the caller (the analyst for a session).

Exports (`export.py`) are bounded: `created_after` and `created_before` are
both required and at most `MAX_EXPORT_DAYS` apart, and at most
`MAX_EXPORT_ROWS` rows are written (FAILED_PRECONDITION / EXPORT_TOO_LARGE
beyond, asking for a narrower range).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime.errors import NotFound, invalid_field
from identity_store.types import utcnow
from services.kyc_tier import export, models, outbox, records, retention, search, withdrawals
from services.kyc_tier.bundles import open_audited
from services.kyc_tier.customers import CustomerView
from services.kyc_tier.flows.reviews import ReviewView, duplicate_customers, review_view
from services.kyc_tier.paging import Page, newest_first
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import BundleCodec, CaptureQuality
from services.kyc_tier.store import Store

REVIEW_STATUSES = ("pending", "approved", "rejected", withdrawals.WITHDRAWN)


@dataclass(frozen=True)
class ReviewQuery:
    status: str = ""  # "" is pending
    kind: str = ""
    customer_id: str = ""


@dataclass(frozen=True)
class TierEventQuery:
    customer_id: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass
class DashboardFlow:
    store: Store
    vault: PiiVault
    codec: BundleCodec | None = None
    # Cuts the portraits (capture-quality owns the face detector).
    quality: CaptureQuality | None = None

    async def search(self, org_id: str, q: str, size: int, token: str) -> Page[CustomerView]:
        kind = search.query_kind(q)

        def work(session: Session) -> Page[CustomerView]:
            page = search.search(session, self.vault, org_id, q, size, token)
            outbox.record(
                session,
                org_id,
                "customer.search",
                f"org:{org_id}",
                "success",
                details={"query_kind": kind, "results": len(page.items)},
            )
            return page

        return await self.store.write(work)

    async def review_queue(
        self, org_id: str, filters: ReviewQuery, size: int, token: str
    ) -> Page[ReviewView]:
        status = filters.status or "pending"
        if status not in REVIEW_STATUSES:
            raise invalid_field("status", "unknown review status")
        items = models.ReviewItem
        query = select(items).where(items.org_id == org_id, items.status == status)
        if filters.kind:
            query = query.where(items.kind == filters.kind)
        if filters.customer_id:
            query = query.where(items.customer_id == filters.customer_id)

        def read(session: Session) -> Page[ReviewView]:
            page = newest_first(session, query, items.created_at, items.review_id, size, token)
            return Page([review_view(r) for r in page.items], page.next_page_token)

        return await self.store.read(read)

    async def review_portrait(self, org_id: str, review_id: str, customer_id: str) -> bytes:
        """The face crop (JPEG) of one of a review item's customers, from that
        customer's newest retained sealed capture; the read is audited. A customer
        whose erasure was requested (erasing or erased) has none."""
        if self.codec is None:
            raise NotFound("no capture codec configured", "PORTRAIT_NOT_FOUND")
        codec = self.codec

        def load(session: Session) -> bytes:
            item = session.get(models.ReviewItem, review_id)
            if (
                item is None
                or item.org_id != org_id
                or customer_id not in (item.customer_id, *duplicate_customers(item))
            ):
                raise NotFound("no such review item", "REVIEW_NOT_FOUND")
            subject = session.get(models.Customer, customer_id)
            if subject is None or subject.org_id != org_id or subject.status != "active":
                # From an erasure's request on, nothing of the customer is opened.
                raise NotFound("no retained capture for that customer", "PORTRAIT_NOT_FOUND")
            bundles = models.CaptureBundle
            newest = session.scalars(
                select(bundles)
                .where(bundles.org_id == org_id, bundles.customer_id == customer_id)
                .order_by(bundles.created_at.desc(), bundles.bundle_id.desc())
            )
            now = utcnow()
            sealed = next((b for b in newest if retention.readable(b, now)), None)
            if sealed is None:
                raise NotFound("no retained capture for that customer", "PORTRAIT_NOT_FOUND")
            return open_audited(
                session,
                self.vault,
                org_id,
                customer_id,
                sealed,
                review_id=review_id,
                purpose="review_portrait",
            )

        raw = await self.store.write(load)
        frames = codec.decode(raw).frames if raw else ()
        image = await self._first_crop(frames)
        if image is None:
            raise NotFound("no face image in the retained capture", "PORTRAIT_NOT_FOUND")
        return image

    async def verifications(
        self, org_id: str, customer_id: str, size: int, token: str
    ) -> Page[records.VerificationRecord]:
        """The customer's verification timeline, newest first, with scores;
        another organisation's customer is NOT_FOUND."""
        rows = models.Verification
        query = select(rows).where(rows.org_id == org_id, rows.customer_id == customer_id)

        def read(session: Session) -> Page[records.VerificationRecord]:
            records.load_customer(session, org_id, customer_id)
            page = newest_first(session, query, rows.created_at, rows.verification_id, size, token)
            return Page([records.verification_record(r) for r in page.items], page.next_page_token)

        return await self.store.read(read)

    async def _first_crop(self, frames: tuple[bytes, ...]) -> bytes | None:
        """The portrait of the first frame capture-quality can decode."""
        if self.quality is None:
            raise RuntimeError("the dashboard was built without capture-quality")
        for frame in frames:
            image = await self.quality.crop_portrait(frame)
            if image is not None:
                return image
        return None

    async def tier_events(
        self, org_id: str, filters: TierEventQuery, size: int, token: str
    ) -> Page[records.TierChange]:
        events = models.TierEvent
        query = select(events).where(events.org_id == org_id)
        if filters.customer_id:
            query = query.where(events.customer_id == filters.customer_id)
        if filters.start_time is not None:
            query = query.where(events.created_at >= filters.start_time)
        if filters.end_time is not None:
            query = query.where(events.created_at < filters.end_time)
        if filters.start_time and filters.end_time and filters.start_time >= filters.end_time:
            raise invalid_field("end_time", "must be after start_time")

        def read(session: Session) -> Page[records.TierChange]:
            page = newest_first(session, query, events.created_at, events.event_id, size, token)
            return Page([records.tier_change(r) for r in page.items], page.next_page_token)

        return await self.store.read(read)

    def export_customers(
        self, org_id: str, tier: str, after: datetime | None, before: datetime | None
    ) -> AsyncIterator[bytes]:
        """The customers CSV in chunks (export.py): bounds checked at once."""
        span = export.bounds(after, before)
        return self._export(org_id, "customers", export.CUSTOMERS, span, {"tier": tier})

    def export_verifications(
        self, org_id: str, kind: str, after: datetime | None, before: datetime | None
    ) -> AsyncIterator[bytes]:
        span = export.bounds(after, before)
        return self._export(org_id, "verifications", export.VERIFICATIONS, span, {"kind": kind})

    async def _export(
        self,
        org_id: str,
        what: str,
        table: export.Table,
        span: export.Bounds,
        equal: dict[str, str],
    ) -> AsyncIterator[bytes]:
        """Counted (EXPORT_TOO_LARGE) and audited (`export.<what>`, the row
        count) in one transaction before the first byte; then the header and
        one chunk per batch, each batch its own short read."""

        def start(session: Session) -> None:
            rows = export.count(session, table, org_id, span, **equal)
            outbox.record(
                session,
                org_id,
                f"export.{what}",
                f"org:{org_id}",
                "success",
                details={"rows": rows},
            )

        await self.store.write(start)
        yield export.header(table)
        cursor: export.Cursor | None = None
        while True:
            read = functools.partial(export.batch, table=table, org_id=org_id, span=span)
            chunk, cursor = await self.store.read(
                functools.partial(read, after=cursor, equal=equal)
            )
            if chunk:
                yield chunk
            if cursor is None:
                return
