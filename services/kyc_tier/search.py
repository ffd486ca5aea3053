"""Customer search for the analyst console (`GET /api/identity/search`).

One free-text query `q` (2 to 200 characters):

- a full NIK (16 digits) matches exactly through the keyed NIK index
  (`customers.nik_hash`, HMAC-SHA256 under the PII index key): no NIK is
  ever compared or stored in clear;
- an email (contains `@`) matches the stored email exactly (case-folded);
- otherwise every token of the query must start a token of the customer's
  name or email. Tokens are normalised (Unicode NFKD with accents dropped,
  lower case, split on anything not a letter or digit, 1 to 64 characters)
  and kept in `customer_search_tokens` (org_id, token) — the same table and
  query on PostgreSQL and SQLite, a B-tree prefix lookup per token. A
  trigram index (pg_trgm) would add infix and typo matches on PostgreSQL;
  it is not used, so both databases answer the same results.

Results are the customers as the list routes return them, with the name,
email and phone masked (the NIK is only ever stored masked), newest first,
paginated; every search is audited (`customer.search`, the query's kind and
the number of results, never the query).
"""

from __future__ import annotations

import re
from dataclasses import replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from identity_runtime.errors import invalid_field
from services.kyc_tier import models
from services.kyc_tier.console_models import CustomerSearchToken
from services.kyc_tier.customers import CustomerView, view
from services.kyc_tier.paging import Page, newest_first
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.search_index import normalised_tokens

_NIK = re.compile(r"\d{16}")
MAX_QUERY_TOKENS = 8


def _mask_word(word: str) -> str:
    return word[:1] + "*" * (len(word) - 1) if word else ""


def mask_name(name: str) -> str:
    return " ".join(_mask_word(w) for w in name.split())


def mask_email(email: str) -> str:
    local, at, domain = email.partition("@")
    return (_mask_word(local) + at + domain) if at else _mask_word(email)


def mask_phone(phone: str) -> str:
    return "*" * max(0, len(phone) - 3) + phone[-3:] if phone else ""


def masked(customer: CustomerView) -> CustomerView:
    return replace(
        customer,
        full_name=mask_name(customer.full_name),
        email=mask_email(customer.email),
        phone=mask_phone(customer.phone),
    )


def query_kind(q: str) -> str:
    q = q.strip()
    if not 2 <= len(q) <= 200:
        raise invalid_field("q", "must be 2 to 200 characters")
    if _NIK.fullmatch(q):
        return "nik"
    if "@" in q:
        return "email"
    if not normalised_tokens(q):
        raise invalid_field("q", "must contain a letter or a digit")
    if len(normalised_tokens(q)) > MAX_QUERY_TOKENS:
        raise invalid_field("q", f"must have at most {MAX_QUERY_TOKENS} words")
    return "name"


def search(
    session: Session, vault: PiiVault, org_id: str, q: str, size: int, token: str
) -> Page[CustomerView]:
    kind = query_kind(q)
    q = q.strip()
    customers = models.Customer
    query = select(customers).where(customers.org_id == org_id)
    if kind == "nik":
        query = query.where(customers.nik_hash.in_(vault.nik_lookups(org_id, q)))
    elif kind == "email":
        query = query.where(func.lower(customers.email) == q.lower())
    else:
        for word in normalised_tokens(q):
            query = query.where(
                customers.customer_id.in_(
                    select(CustomerSearchToken.customer_id).where(
                        CustomerSearchToken.org_id == org_id,
                        CustomerSearchToken.token.startswith(word, autoescape=True),
                    )
                )
            )
    page = newest_first(session, query, customers.created_at, customers.customer_id, size, token)
    return Page([masked(view(row)) for row in page.items], page.next_page_token)
