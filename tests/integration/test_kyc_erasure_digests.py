"""An erasure drops the plain digests of the customer's captures from the
verification rows it keeps and from the attempts; nonces still refuse a
replay. SQLite and PostgreSQL, fake ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from identity_runtime.errors import DomainError, FailedPrecondition
from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.flows.step_up import StepUpRequest
from tests.integration.test_kyc_trust import (
    onboarded,
    step_up_customer,
    step_up_request,
)
from tests.support.kyc_fakes import (
    KycFakes,
    assert_audit_entries_acceptable,
    capture_bundle,
    fake_kyc_core,
    new_org,
    rows,
)


@pytest.fixture
def fakes() -> KycFakes:
    return KycFakes()


@pytest.fixture
async def core(database_url: str, fakes: KycFakes) -> AsyncIterator[KycTierCore]:
    async with fake_kyc_core(database_url, fakes) as built:
        yield built
        await assert_audit_entries_acceptable(built)


async def test_an_erasure_drops_the_capture_digests_and_nonces_still_refuse_replays(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id = await onboarded(core, fakes, org_id)
    bundle = capture_bundle(nonce="nonce-kept-after-erasure")
    step_up = StepUpRequest(customer_id, "chl_s", bundle, action="transfer")
    assert (await core.step_up.step_up(org_id, step_up)).allow
    other_id = await step_up_customer(core, fakes, org_id)
    assert (await core.step_up.step_up(org_id, step_up_request(other_id))).allow
    checks = await rows(core, models.Verification, customer_id=customer_id)
    assert any(v.bundle_sha256 for v in checks) and any(v.input_hashes for v in checks)

    await core.erasure.erase(org_id, customer_id, "")

    checks = await rows(core, models.Verification, customer_id=customer_id)
    assert checks and all(v.bundle_sha256 is None and v.input_hashes == {} for v in checks)
    assert all(v.nonce for v in checks if v.kind in ("ktp_capture", "step_up"))
    attempts = await rows(core, models.Attempt, customer_id=customer_id)
    assert attempts and all(a.bundle_sha256 is None for a in attempts)
    # Another customer's rows keep theirs.
    (kept,) = await rows(core, models.Verification, customer_id=other_id, kind="step_up")
    assert kept.bundle_sha256 and kept.input_hashes["bundle"]
    # The erased customer's replay is refused as the customer is; another
    # customer's use of the same nonce is a replay all the same.
    with pytest.raises(FailedPrecondition) as erased:
        await core.step_up.step_up(org_id, step_up)
    assert erased.value.reason == "CUSTOMER_ERASED"
    replay = StepUpRequest(other_id, "chl_s", bundle, action="transfer")
    with pytest.raises(DomainError) as replayed:
        await core.step_up.step_up(org_id, replay)
    assert replayed.value.reason == "NONCE_REPLAYED"
