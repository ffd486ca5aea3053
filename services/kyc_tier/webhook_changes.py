"""Changing and deleting a webhook endpoint (each audited).

An update keeps the endpoint's id, secret and delivery log; deliveries
already queued go to the new URL. A delete gives up pending deliveries,
destroys the sealed secrets and hides the endpoint (the row and its delivery
log stay for the audit window); the organisation's default endpoint, if it
was this one, is cleared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from identity_runtime.errors import require
from identity_store.types import utcnow
from services.kyc_tier import models, outbox
from services.kyc_tier.org_settings import default_webhook_id
from services.kyc_tier.store import Store
from services.kyc_tier.webhook_outbox import give_up_pending
from services.kyc_tier.webhook_targets import check_events, check_url
from services.kyc_tier.webhooks import (
    MAX_DESCRIPTION_LENGTH,
    WebhookRecord,
    owned,
    webhook_record,
)


@dataclass
class WebhookChanges:
    store: Store
    allow_loopback: bool

    async def update(
        self,
        org_id: str,
        webhook_id: str,
        url: str | None,
        events: Sequence[str],
        description: str | None,
    ) -> WebhookRecord:
        """Fields left None (events: empty) keep their value; INVALID_FIELD when
        nothing is to change or a value is refused (the URL never echoed)."""
        require(
            url is not None or bool(events) or description is not None,
            "webhook",
            "give a url, events or a description to change",
        )
        new_url = check_url(url.strip(), self.allow_loopback) if url is not None else None
        new_events = check_events(events) if events else None
        if description is not None:
            require(
                len(description) <= MAX_DESCRIPTION_LENGTH,
                "description",
                f"must be at most {MAX_DESCRIPTION_LENGTH} characters",
            )

        def work(session: Session) -> WebhookRecord:
            row = owned(session, org_id, webhook_id)
            changed = []
            if new_url is not None and new_url != row.url:
                row.url = new_url
                changed.append("url")
            if new_events is not None and new_events != list(row.events or []):
                row.events = new_events
                changed.append("events")
            if description is not None and description != row.description:
                row.description = description
                changed.append("description")
            outbox.record(
                session,
                org_id,
                "webhook.update",
                f"webhook:{webhook_id}",
                "success",
                details={"fields": ",".join(changed) or "none"},
            )
            session.flush()
            return webhook_record(row, default_webhook_id(session, org_id))

        return await self.store.write(work)

    async def delete(self, org_id: str, webhook_id: str) -> None:
        def work(session: Session) -> None:
            row = owned(session, org_id, webhook_id)
            now = utcnow()
            give_up_pending(session, webhook_id, now)
            row.active = False
            row.deleted_at = now
            row.disabled_at = row.disabled_at or now
            row.disabled_reason = row.disabled_reason or "manual"
            # The secrets are destroyed: nothing can be signed with them again.
            row.secret_sealed = b""
            row.previous_secret_sealed = None
            row.previous_secret_expires_at = None
            org = session.get(models.Org, org_id)
            if org is not None and org.default_webhook_id == webhook_id:
                org.default_webhook_id = None
            outbox.record(session, org_id, "webhook.delete", f"webhook:{webhook_id}", "success")

        await self.store.write(work)
