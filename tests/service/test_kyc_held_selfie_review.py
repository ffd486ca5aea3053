"""A held selfie (it matched another customer's face) while its review item is
pending, and after an analyst decides it, with fake ports, on SQLite and
PostgreSQL: a new selfie is refused (REVIEW_PENDING) before any model call and
writes nothing, a replay of the held one still answers; a face match citing
the held selfie follows the analyst's verdict."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.kyc_tier.v1 import resources_pb2
from identity_runtime.errors import DomainError
from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.flows.face import FaceMatchResult, LivenessRequest, MatchRequest
from services.kyc_tier.mapping.captures import bundle_input
from services.kyc_tier.records import VerificationRecord
from tests.support import unique_name
from tests.support.held_review import HeldCapture, held_duplicate, holding
from tests.support.kyc_fakes import (
    KycFakes,
)


def selfie_request(customer_id: str) -> LivenessRequest:
    """A selfie as a request carries it (its sealed bundle can be reopened)."""
    bundle = resources_pb2.CaptureBundle(
        frames=[
            resources_pb2.CapturedFrame(
                image=types_pb2.Image(data=frame), offset_ms=i * 400, baseline=i == 0
            )
            for i, frame in enumerate([b"ambient", b"red", b"green"])
        ],
        attestation=types_pb2.BundleAttestation(
            device_id="device-1", nonce=unique_name("nonce"), signature=b"signed"
        ),
    )
    bundle.attestation.captured_at.GetCurrentTime()
    return LivenessRequest(customer_id, unique_name("chl"), bundle_input(bundle))


@dataclass
class HeldSelfie(HeldCapture):
    """A customer whose onboarding selfie matched another customer's face."""

    request: LivenessRequest

    async def match_citing_it(self) -> FaceMatchResult:
        request = MatchRequest(self.customer_id, liveness_verification_id=self.verification_id)
        return await self.core.face.match(self.org_id, request)

    async def refused_match(self) -> DomainError:
        """The refusal of a match citing the held selfie: no model ran, nothing recorded."""
        self.forget_model_calls()
        with pytest.raises(DomainError) as refused:
            await self.match_citing_it()
        self.assert_no_model_call()
        assert await self.rows(models.Verification, kind="face_match") == []
        return refused.value


async def hold_a_selfie(core: KycTierCore, fakes: KycFakes) -> HeldSelfie:
    async def capture(org_id: str, request: LivenessRequest) -> VerificationRecord:
        return (await core.face.check_liveness(org_id, request)).recorded.verification

    return await held_duplicate(
        core, fakes, "onboarding_selfie", selfie_request, capture, HeldSelfie
    )


@pytest.fixture
async def held(database_url: str) -> AsyncIterator[HeldSelfie]:
    async with holding(database_url, hold_a_selfie) as made:
        yield made


async def test_a_new_selfie_while_the_held_one_waits_is_refused_and_writes_nothing(
    held: HeldSelfie,
) -> None:
    await held.assert_new_capture_refused(
        lambda: held.core.face.check_liveness(held.org_id, selfie_request(held.customer_id)),
        "face_liveness",
    )

    # The held selfie's own replay still answers as it did.
    again = await held.core.face.check_liveness(held.org_id, held.request)
    assert again.replayed
    assert again.recorded.verification.verification_id == held.verification_id
    assert len(await held.rows(models.ReviewItem)) == 1


async def test_once_approved_a_new_selfie_and_a_match_citing_the_held_one_work(
    held: HeldSelfie,
) -> None:
    await held.decide("approve")

    match = await held.match_citing_it()
    assert match.recorded.verification.outcome == "passed"
    assert match.recorded.verification.details["against_enrolled_live"] is True

    again = await held.core.face.check_liveness(held.org_id, selfie_request(held.customer_id))
    assert again.recorded.verification.outcome == "passed"
    # The approved reference stays the customer's one reference.
    assert again.assessment.enrollment_id == ""
    assert [e.active for e in held.fakes.matcher.enrollments[held.customer_id]] == [True]
    assert len(await held.rows(models.ReviewItem)) == 1


async def test_once_rejected_a_match_citing_the_held_selfie_is_refused(held: HeldSelfie) -> None:
    await held.decide("reject")

    refused = await held.refused_match()
    assert (refused.code, refused.reason) == ("FAILED_PRECONDITION", "TIER_PREREQUISITE_MISSING")
    assert refused.metadata["missing"] == "face_liveness"
    assert "rejected" in refused.message

    # The decided item no longer holds back a new selfie.
    again = await held.core.face.check_liveness(held.org_id, selfie_request(held.customer_id))
    assert again.recorded.verification.outcome == "passed"


async def test_a_match_citing_the_held_selfie_waits_for_the_review(held: HeldSelfie) -> None:
    refused = await held.refused_match()
    assert (refused.code, refused.reason) == ("FAILED_PRECONDITION", "REVIEW_PENDING")
