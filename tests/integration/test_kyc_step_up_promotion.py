"""Step-up promotion through the real flow with fake ports, on SQLite and
PostgreSQL: an allowed, HIGH-band step-up capture of clearly better quality
replaces a selfie-derived reference (audited `enrollment.promoted`, ids
only); never a dukcapil or ktp_extract reference, never twice in the window.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.customers import CustomerInput
from services.kyc_tier.flows.step_up import StepUpRequest
from tests.support import unique_name
from tests.support.kyc_fakes import (
    GOOD_FACE,
    KycFakes,
    assert_audit_entries_acceptable,
    capture_bundle,
    fake_kyc_core,
    new_org,
    rows,
)

# Every measure comfortably inside capture-quality's selfie limits: quality 1.
SHARP_FACE = replace(
    GOOD_FACE,
    quality={
        "yaw_deg": 0.0,
        "pitch_deg": 0.0,
        "roll_deg": 0.0,
        "inter_eye_distance_px": 200.0,
        "blur_laplacian_var": 300.0,
        "face_area_ratio": 0.45,
        "illumination_mean": 135.0,
        "exposure_clipped_ratio": 0.0,
    },
)
HIGH_BAND_RATE = 1e-7


@pytest.fixture
def fakes() -> KycFakes:
    made = KycFakes()
    made.quality.face = SHARP_FACE
    made.matcher.false_match_rate = HIGH_BAND_RATE
    return made


@pytest.fixture
async def core(database_url: str, fakes: KycFakes) -> AsyncIterator[KycTierCore]:
    async with fake_kyc_core(database_url, fakes) as built:
        yield built


async def _customer(core: KycTierCore, fakes: KycFakes, source: str, quality: float | None):
    org_id = await new_org(core)
    created = await core.customers.create(
        org_id, CustomerInput(external_id=unique_name("ext"), nik="3273024107950003")
    )
    customer_id = created.customer.customer_id
    reference = fakes.matcher.enroll_reference(customer_id, source, quality=quality)
    return org_id, customer_id, reference


async def _step_up(core: KycTierCore, org_id: str, customer_id: str):
    request = StepUpRequest(customer_id, "chl_1", capture_bundle(unique_name("n")), "transfer")
    result = await core.step_up.step_up(org_id, request)
    assert result.allow
    return result


async def test_a_better_high_band_step_up_is_promoted_once_and_audited(core, fakes) -> None:
    org_id, customer_id, selfie = await _customer(core, fakes, "onboarding_selfie", 0.4)
    result = await _step_up(core, org_id, customer_id)

    listed = await fakes.matcher.list_enrollments(customer_id, include_retired=True)
    (old,) = [e for e in listed if e.enrollment_id == selfie]
    (new,) = [e for e in listed if e.active]
    assert old.retired_at is not None and not old.active
    assert (new.source, new.quality) == ("step_up_promotion", pytest.approx(1.0))
    (audit,) = await rows(core, models.AuditOutbox, action="enrollment.promoted")
    assert (audit.org_id, audit.subject, audit.outcome) == (
        org_id,
        f"customer:{customer_id}",
        "success",
    )
    assert audit.details == {"enrollment_id": new.enrollment_id, "superseded": selfie}
    await assert_audit_entries_acceptable(core)
    (verification,) = await rows(core, models.Verification, verification_id=result.verification_id)
    assert verification.details["promoted_enrollment_id"] == new.enrollment_id

    # Within the window a second, even better capture promotes nothing.
    fakes.matcher.enrollments[customer_id] = [
        replace(e, quality=0.1) if e.active else e for e in listed
    ]
    await _step_up(core, org_id, customer_id)
    assert len(await fakes.matcher.list_enrollments(customer_id, include_retired=True)) == 2
    assert len(await rows(core, models.AuditOutbox, action="enrollment.promoted")) == 1


def _ordinary_score(fakes: KycFakes) -> None:
    fakes.matcher.false_match_rate = 1e-4  # a match, but the MEDIUM band


def _nothing(fakes: KycFakes) -> None:
    return None


# case: (reference source, reference quality, arrange)
NOT_PROMOTED = {
    "quality not better by the margin": ("onboarding_selfie", 0.95, _nothing),
    "reference quality unknown": ("onboarding_selfie", None, _nothing),
    "score below the high band": ("onboarding_selfie", 0.2, _ordinary_score),
    "never over dukcapil": ("dukcapil", 0.0, _nothing),
    "never over ktp_extract": ("ktp_extract", 0.0, _nothing),
}


@pytest.mark.parametrize(
    ("source", "quality", "arrange"), NOT_PROMOTED.values(), ids=NOT_PROMOTED.keys()
)
async def test_no_promotion_unless_every_condition_holds(
    core, fakes, source, quality, arrange
) -> None:
    org_id, customer_id, reference = await _customer(core, fakes, source, quality)
    arrange(fakes)
    await _step_up(core, org_id, customer_id)
    listed = await fakes.matcher.list_enrollments(customer_id, include_retired=True)
    assert [(e.enrollment_id, e.active, e.retired_at) for e in listed] == [(reference, True, None)]
    assert not await rows(core, models.AuditOutbox, action="enrollment.promoted")
