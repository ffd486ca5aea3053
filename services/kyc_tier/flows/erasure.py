"""Erasure of a customer (UU PDP).

    POST /api/identity/customers/{id}/erase
        matching.RetireEnrollments + matching.ShredCustomerKey,
        then kyc-tier's own personal data and keys

Each step is idempotent, and the biometric steps come first: shredding is
irreversible, so a failure after it is repaired by erasing again. The
verification rows and audit entries stay for the regulated window; the tier
becomes `none` (a tier event with cause "erasure").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from services.kyc_tier import customers, outbox, records
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import Matcher
from services.kyc_tier.store import Store

MAX_REASON_LENGTH = 64


@dataclass(frozen=True)
class ErasureResult:
    customer_id: str
    erased_at: datetime | None
    enrollments_retired: int
    # Template keys shredded by matching plus the customer's keys here.
    keys_destroyed: int


@dataclass
class ErasureFlow:
    store: Store
    vault: PiiVault
    matcher: Matcher

    async def erase(self, org_id: str, customer_id: str, reason: str) -> ErasureResult:
        await self.store.read(lambda s: records.load_customer(s, org_id, customer_id))
        retired, shredded = await self._erase_biometrics(customer_id)
        return await self.store.write(
            lambda s: self._erase_personal_data(s, org_id, customer_id, reason, retired, shredded)
        )

    async def _erase_biometrics(self, customer_id: str) -> tuple[int, int]:
        """Matching retires the references and shreds the template key:
        (references retired, keys destroyed)."""
        retired = await self.matcher.retire(customer_id, "erasure")
        return retired, await self.matcher.shred(customer_id)

    def _erase_personal_data(
        self,
        session: Session,
        org_id: str,
        customer_id: str,
        reason: str,
        retired: int,
        shredded: int,
    ) -> ErasureResult:
        """Personal fields cleared, the pii and bundle keys destroyed, the tier settled,
        audited: one transaction."""
        customer = records.load_customer(session, org_id, customer_id, for_update=True)
        destroyed = shredded
        if customer.status != "erased":
            destroyed += customers.erase_personal_data(session, self.vault, customer)
            customers.settle(session, customer, "erasure")
        outbox.record(
            session,
            org_id,
            "customer.erase",
            f"customer:{customer_id}",
            "success",
            details={
                "reason": reason[:MAX_REASON_LENGTH],
                "enrollments_retired": retired,
                "keys_destroyed": destroyed,
            },
        )
        return ErasureResult(customer_id, customer.erased_at, retired, destroyed)
