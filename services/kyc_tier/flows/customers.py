"""Customers of a partner organisation: creation, listing, reading.

    POST /api/customers                 (a NIK, when given, is validated, sealed
                                         and indexed: NIK_FORMAT and basic)
    GET  /api/customers, /api/identity/customers/{id}

Erasure is its own flow (`erasure.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.kyc_tier import records
from services.kyc_tier.customers import CustomerInput, Customers, CustomerView
from services.kyc_tier.paging import Page
from services.kyc_tier.store import Store


@dataclass(frozen=True)
class CreatedCustomer:
    customer: CustomerView
    # The NIK_FORMAT verification, when a NIK was given.
    nik_verification: records.VerificationRecord | None


@dataclass(frozen=True)
class CustomerQuery:
    page_size: int = 0
    page_token: str = ""
    tier: str = ""  # "" for every tier
    created_after: datetime | None = None


@dataclass
class CustomerFlow:
    store: Store
    customers: Customers

    async def create(self, org_id: str, data: CustomerInput) -> CreatedCustomer:
        view, verification = await self.store.write(
            lambda s: self.customers.create(s, org_id, data)
        )
        return CreatedCustomer(view, verification)

    async def list(self, org_id: str, query: CustomerQuery) -> Page[CustomerView]:
        return await self.store.read(
            lambda s: self.customers.list(
                s, org_id, query.page_size, query.page_token, query.tier, query.created_after
            )
        )

    async def get(self, org_id: str, customer_id: str) -> CustomerView:
        return await self.store.read(lambda s: self.customers.get(s, org_id, customer_id))
