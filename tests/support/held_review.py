"""A customer whose capture is held for an analyst's review (it matched
another customer's face), over a kyc-tier core with fake ports: what the
held-selfie and held-card tests share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from identity_runtime.errors import DomainError
from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.customers import CustomerInput
from services.kyc_tier.ports import Duplicate
from services.kyc_tier.records import VerificationRecord
from tests.support import unique_name
from tests.support.kyc_fakes import (
    KycFakes,
    assert_audit_entries_acceptable,
    fake_kyc_core,
    new_org,
    rows,
)


@dataclass
class HeldCapture:
    core: KycTierCore
    fakes: KycFakes
    org_id: str
    customer_id: str
    verification_id: str

    async def rows(self, model: Any, **where: Any) -> list[Any]:
        return await rows(self.core, model, customer_id=self.customer_id, **where)

    async def decide(self, decision: str) -> None:
        (review,) = await self.rows(models.ReviewItem)
        await self.core.reviews.decide(self.org_id, review.review_id, decision, "")

    def forget_model_calls(self) -> None:
        self.fakes.quality.face_calls.clear()
        self.fakes.quality.ktp_calls.clear()
        self.fakes.liveness.checks.clear()
        self.fakes.embedder.embedded.clear()
        self.fakes.matcher.verified.clear()

    def assert_no_model_call(self) -> None:
        assert self.fakes.quality.face_calls == []
        assert self.fakes.quality.ktp_calls == []
        assert self.fakes.liveness.checks == []
        assert self.fakes.embedder.embedded == []
        assert self.fakes.matcher.verified == []

    async def assert_new_capture_refused(
        self, capture: Callable[[], Awaitable[Any]], kind: str
    ) -> None:
        """A new capture of `kind` while the held one waits: REVIEW_PENDING
        before any model call, nothing enrolled or recorded, the attempt refused."""
        self.forget_model_calls()
        with pytest.raises(DomainError) as refused:
            await capture()

        assert (refused.value.code, refused.value.reason) == (
            "FAILED_PRECONDITION",
            "REVIEW_PENDING",
        )
        assert refused.value.metadata == {"kind": kind}
        self.assert_no_model_call()
        assert len(self.fakes.matcher.enrollments[self.customer_id]) == 1
        (verification,) = await self.rows(models.Verification)
        assert verification.verification_id == self.verification_id
        (review,) = await self.rows(models.ReviewItem)
        assert review.status == "pending"
        attempts = await self.rows(models.Attempt, kind=kind)
        assert sorted(a.outcome for a in attempts) == ["needs_review", "refused"]


H = TypeVar("H", bound=HeldCapture)


@contextlib.asynccontextmanager
async def holding(
    database_url: str, hold: Callable[[KycTierCore, KycFakes], Awaitable[H]]
) -> AsyncIterator[H]:
    """A core with fake ports and a capture `hold` made and held; afterwards,
    whatever the test made kyc-tier audit, the audit service accepts."""
    fakes = KycFakes()
    async with fake_kyc_core(database_url, fakes) as core:
        yield await hold(core, fakes)
        await assert_audit_entries_acceptable(core)


R = TypeVar("R")


async def held_duplicate(
    core: KycTierCore,
    fakes: KycFakes,
    source: str,
    request_for: Callable[[str], R],
    capture: Callable[[str, R], Awaitable[VerificationRecord]],
    held: Callable[[KycTierCore, KycFakes, str, str, str, R], H],
) -> H:
    """`held(core, fakes, org_id, customer_id, verification_id, request)` of a
    new customer whose capture, `capture(org_id, request_for(customer_id))`,
    matched another customer's reference of `source`, so it waits for an analyst."""
    org_id = await new_org(core)
    other = await core.customers.create(org_id, CustomerInput(unique_name("ext")))
    fakes.matcher.enroll_reference(other.customer.customer_id, source)
    created = await core.customers.create(org_id, CustomerInput(unique_name("ext")))
    customer_id = created.customer.customer_id
    fakes.matcher.duplicates = (Duplicate(other.customer.customer_id, 0.93),)
    request = request_for(customer_id)
    verification = await capture(org_id, request)
    fakes.matcher.duplicates = ()
    assert verification.outcome == "needs_review"
    return held(core, fakes, org_id, customer_id, verification.verification_id, request)
