"""The console's customer search token index (see search.py): a customer's
name and email tokens, written when the customer is created and deleted
when their personal data is erased."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import delete
from sqlalchemy.orm import Session

from services.kyc_tier import models
from services.kyc_tier.console_models import CustomerSearchToken

_SPLIT = re.compile(r"[^0-9a-z]+")


def normalised_tokens(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return [t[:64] for t in _SPLIT.split(plain) if t]


def tokens_of(full_name: str, email: str) -> set[str]:
    return set(normalised_tokens(full_name)) | set(normalised_tokens(email))


def index_customer(session: Session, customer: models.Customer) -> None:
    """(Re)index the customer's name and email tokens."""
    forget_customer(session, customer.customer_id)
    for token in sorted(tokens_of(customer.full_name or "", customer.email or "")):
        session.add(
            CustomerSearchToken(
                customer_id=customer.customer_id, token=token, org_id=customer.org_id
            )
        )


def forget_customer(session: Session, customer_id: str) -> None:
    session.execute(
        delete(CustomerSearchToken).where(CustomerSearchToken.customer_id == customer_id)
    )
