"""Customers: creation (with NIK validation), listing, reading, erasure."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity_ktp.nik import RULE_MESSAGES, validate_nik, wib_date
from identity_runtime.convert import same_named
from identity_runtime.errors import AlreadyExists, InvalidArgument, NotFound, invalid_field
from identity_runtime.reason_codes import check_reason
from services.kyc_tier import bundles, idempotency, models, outbox, records, search_index, tiers
from services.kyc_tier.paging import Page, newest_first
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import Reason

PERSONAL_COLUMNS = ("full_name", "email", "phone", "nik_sealed", "nik_hash", "nik_masked")
# What an erased customer's external_id becomes (with its customer id).
ERASED_EXTERNAL_ID = "erased:"

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9]{6,20}$")


@dataclass(frozen=True)
class CustomerInput:
    external_id: str
    full_name: str = ""
    nik: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    external_id: str
    full_name: str
    nik_masked: str
    email: str
    phone: str
    tier: str
    status: str
    created_at: datetime
    updated_at: datetime
    tier_updated_at: datetime | None
    legal_hold: bool = False
    # Set by a breach revocation of the customer's face templates.
    reenrollment_required_at: datetime | None = None


def view(row: models.Customer) -> CustomerView:
    # Personal fields are NULL once erased (or never given).
    return same_named(
        CustomerView,
        row,
        full_name=row.full_name or "",
        nik_masked=row.nik_masked or "",
        email=row.email or "",
        phone=row.phone or "",
        legal_hold=row.legal_hold_since is not None,
    )


def nik_reasons(nik: str, today: date) -> tuple[Reason, ...]:
    """The NIK's failing rules, its birth date judged against `today` (a WIB date)."""
    check = validate_nik(nik, today=today)
    return tuple(Reason(code, RULE_MESSAGES.get(code, "")) for code in check.reasons)


def _validated(data: CustomerInput) -> CustomerInput:
    external_id = data.external_id.strip()
    if not 1 <= len(external_id) <= 128:
        raise invalid_field("external_id", "must be 1 to 128 characters")
    if external_id.startswith(ERASED_EXTERNAL_ID):
        raise invalid_field("external_id", f"must not start with {ERASED_EXTERNAL_ID!r} (reserved)")
    if len(data.full_name) > 200:
        raise invalid_field("full_name", "must be at most 200 characters")
    email = data.email.strip()
    if email and not _EMAIL.match(email):
        raise invalid_field("email", "is not an email address")
    phone = data.phone.replace(" ", "").replace("-", "")
    if phone and not _PHONE.match(phone):
        raise invalid_field("phone", "must be 6 to 20 digits, optionally with a leading +")
    return CustomerInput(external_id, data.full_name.strip(), data.nik.strip(), email, phone)


class Customers:
    def __init__(self, vault: PiiVault, clock: Callable[[], datetime]):
        self.vault = vault
        # A NIK's birth date is judged against the WIB date of this clock.
        self.clock = clock

    def create(
        self, session: Session, org_id: str, data: CustomerInput
    ) -> tuple[CustomerView, records.VerificationRecord | None]:
        data = _validated(data)
        reasons = nik_reasons(data.nik, wib_date(self.clock())) if data.nik else ()
        if reasons:
            # Refused before anything is written: the partner fixes the input.
            raise InvalidArgument(
                "nik: " + "; ".join(r.message for r in reasons),
                "NIK_INVALID",
                {"field": "nik", "check": ",".join(r.code for r in reasons)},
            )
        if session.get(models.Org, org_id) is None:
            # An organisation that does not exist is its own error, checked
            # first: the insert's foreign-key failure is no duplicate.
            raise NotFound("no such organisation", "ORGANIZATION_NOT_FOUND")
        if session.scalar(
            select(models.Customer.customer_id).where(
                models.Customer.org_id == org_id, models.Customer.external_id == data.external_id
            )
        ):
            raise AlreadyExists(
                "a customer with this external_id exists",
                "CUSTOMER_ALREADY_EXISTS",
                {"field": "external_id"},
            )
        customer = models.Customer(
            customer_id=records.new_id("cus"),
            org_id=org_id,
            external_id=data.external_id,
            full_name=data.full_name or None,
            email=data.email or None,
            phone=data.phone or None,
            tier="none",
        )
        session.add(customer)
        try:
            session.flush()
        except IntegrityError:
            raise AlreadyExists(
                "a customer with this external_id exists",
                "CUSTOMER_ALREADY_EXISTS",
                {"field": "external_id"},
            ) from None
        search_index.index_customer(session, customer)
        outbox.record(
            session, org_id, "customer.create", f"customer:{customer.customer_id}", "success"
        )
        verification = None
        if data.nik:
            verification = self.record_nik(session, customer, data.nik, source="customer_create")
        return view(customer), verification

    def record_nik(
        self, session: Session, customer: models.Customer, nik: str, source: str
    ) -> records.VerificationRecord:
        """Store a structurally valid NIK and its NIK_FORMAT verification; settle the tier."""
        self.vault.store_nik(session, customer, nik)
        row = records.add_verification(
            session, customer, tiers.NIK_FORMAT, True, details={"source": source}
        )
        outbox.record(
            session,
            customer.org_id,
            "verification.nik_format",
            f"customer:{customer.customer_id}",
            "success",
            details={"verification_id": row.verification_id, "source": source},
        )
        settle(session, customer, "verification", verification_id=row.verification_id)
        return records.verification_record(row)

    def list(
        self,
        session: Session,
        org_id: str,
        size: int,
        token: str,
        tier: str,
        created_after: datetime | None,
    ) -> Page[CustomerView]:
        query = select(models.Customer).where(models.Customer.org_id == org_id)
        if tier:
            query = query.where(models.Customer.tier == tier)
        if created_after is not None:
            query = query.where(models.Customer.created_at >= created_after)
        page = newest_first(
            session, query, models.Customer.created_at, models.Customer.customer_id, size, token
        )
        return Page([view(r) for r in page.items], page.next_page_token)

    def get(self, session: Session, org_id: str, customer_id: str) -> CustomerView:
        return view(records.load_customer(session, org_id, customer_id))


def settle(
    session: Session, customer: models.Customer, cause: str, *, verification_id: str | None = None
) -> records.TierChange | None:
    """Recompute the tier; a change is a tier event and an audit entry.

    `verification_id` names the verification that caused it; causes that are
    not a verification (an erasure, a recompute on upgrade) have none."""
    change = records.settle_tier(session, customer, cause, verification_id)
    if change is not None:
        outbox.record(
            session,
            customer.org_id,
            "kyc.tier_changed",
            f"customer:{customer.customer_id}",
            "success",
            details={
                "from_tier": change.from_tier,
                "to_tier": change.to_tier,
                "cause": cause,
                "verification_id": verification_id or "",
                "event_id": change.event_id,
            },
        )
    return change


# The customer's columns holding personal data (all nullable): erasure empties them.


def erase_personal_data(session: Session, vault: PiiVault, customer: models.Customer) -> int:
    """Remove personal fields, the sealed capture frames, their digests and the
    responses an Idempotency-Key kept about the customer, and destroy their kyc-tier keys
    (the NIK's and the capture bundles'); the erasure marks the customer
    erased in its last step."""
    search_index.forget_customer(session, customer.customer_id)
    idempotency.forget_customer(session, customer.org_id, customer.customer_id)
    bundles.forget_customer(session, customer.org_id, customer.customer_id)
    bundles.forget_digests(session, customer.org_id, customer.customer_id)
    for column in PERSONAL_COLUMNS:
        setattr(customer, column, None)
    # The partner's id for the person may be an email or a phone number: it
    # goes too, and stops blocking a new customer with the same id.
    customer.external_id = ERASED_EXTERNAL_ID + customer.customer_id
    return vault.destroy(session, customer)


def set_legal_hold(
    session: Session, org_id: str, customer_id: str, hold: bool, reason: str, now: datetime
) -> CustomerView:
    """Place or lift a legal hold (erasure is refused while it is set); audited.
    The reason is chained into the audit log: a code (`check_reason`), for
    the REST route and the operator CLI alike."""
    check_reason(reason)
    customer = records.load_customer(session, org_id, customer_id, for_update=True)
    records.require_active(customer)
    if hold:
        customer.legal_hold_since = customer.legal_hold_since or now
        customer.legal_hold_reason = reason or None
    else:
        customer.legal_hold_since = None
        customer.legal_hold_reason = None
    outbox.record(
        session,
        org_id,
        "customer.legal_hold",
        f"customer:{customer_id}",
        "success",
        details={"hold": hold, "reason": reason},
    )
    return view(customer)
