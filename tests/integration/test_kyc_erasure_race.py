"""A capture racing its customer's erasure to a destroyed key (kyc-tier's
bundle key at the seal, matching's template key during the assessment) is
refused CUSTOMER_ERASED, as the flows declare, with nothing recorded; a
request under an Idempotency-Key racing the erasure keeps nothing of its
answer. On SQLite and PostgreSQL with fake ports."""

from __future__ import annotations

from typing import Any

import pytest

from identity_crypto.errors import KeyDestroyed
from identity_runtime.errors import FailedPrecondition
from services.kyc_tier import models, records
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.idempotency import ERASED, IdempotentRequest, erased_key
from tests.integration.test_kyc_trust import (
    new_customer,
    step_up_customer,
    step_up_request,
)
from tests.support.kyc_fakes import (
    KycFakes,
    new_org,
    rows,
)


async def assert_refused_with_nothing_recorded(core: KycTierCore, customer_id: str) -> None:
    (attempt,) = await rows(core, models.Attempt, customer_id=customer_id, kind="step_up")
    assert (attempt.outcome, attempt.reasons[0]["code"]) == ("refused", "CUSTOMER_ERASED")
    assert await rows(core, models.Verification, customer_id=customer_id, kind="step_up") == []
    assert await rows(core, models.CaptureBundle, customer_id=customer_id) == []
    denied = await rows(
        core, models.AuditOutbox, action="stepup.decide", subject=f"customer:{customer_id}"
    )
    assert [(e.outcome, e.details["reason"]) for e in denied] == [("denied", "CUSTOMER_ERASED")]


async def test_a_step_up_sealing_after_the_erasure_destroyed_the_key_is_refused(
    core: KycTierCore, fakes: KycFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The erasure completes after the step-up's begin and after its write
    checked the customer, before the seal (forced: the check is made to
    pass, as it did an instant before the erasure committed): the seal meets
    the destroyed bundle key; the answer is CUSTOMER_ERASED, not KEY_DESTROYED."""
    org_id = await new_org(core)
    customer_id = await step_up_customer(core, fakes, org_id)
    verify = fakes.matcher.verify_enrolled

    async def erased_meanwhile(*args: Any, **kwargs: Any) -> Any:
        match = await verify(*args, **kwargs)
        await core.erasure.erase(org_id, customer_id, "")
        monkeypatch.setattr(records, "require_active", lambda customer: None)
        return match

    fakes.matcher.verify_enrolled = erased_meanwhile  # type: ignore[method-assign]
    with pytest.raises(FailedPrecondition) as refused:
        await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert refused.value.reason == "CUSTOMER_ERASED"
    assert not isinstance(refused.value, KeyDestroyed)
    await assert_refused_with_nothing_recorded(core, customer_id)


async def test_a_step_up_meeting_matchings_shredded_key_is_refused_customer_erased(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """The erasure completes while the step-up is with the mesh: matching
    answers KEY_DESTROYED (the template key is shredded); kyc-tier answers
    the erased customer's refusal."""
    org_id = await new_org(core)
    customer_id = await step_up_customer(core, fakes, org_id)
    verify = fakes.matcher.verify_enrolled

    async def shredded_meanwhile(customer: str, *args: Any, **kwargs: Any) -> Any:
        await core.erasure.erase(org_id, customer_id, "")
        if customer in fakes.matcher.shredded:
            raise FailedPrecondition("the customer's key was destroyed", "KEY_DESTROYED")
        return await verify(customer, *args, **kwargs)

    fakes.matcher.verify_enrolled = shredded_meanwhile  # type: ignore[method-assign]
    with pytest.raises(FailedPrecondition) as refused:
        await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert refused.value.reason == "CUSTOMER_ERASED"
    await assert_refused_with_nothing_recorded(core, customer_id)


async def test_a_destroyed_key_of_an_active_customer_is_not_called_an_erasure(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """KEY_DESTROYED for a customer still active (a breach revocation, not an
    erasure) is answered as it is."""
    org_id = await new_org(core)
    customer_id = await step_up_customer(core, fakes, org_id)

    async def destroyed(*args: Any, **kwargs: Any) -> Any:
        raise FailedPrecondition("the customer's key was destroyed", "KEY_DESTROYED")

    fakes.matcher.verify_enrolled = destroyed  # type: ignore[method-assign]
    with pytest.raises(FailedPrecondition) as refused:
        await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert refused.value.reason == "KEY_DESTROYED"


@pytest.mark.parametrize("receipt", [False, True], ids=["answer", "erasure receipt"])
async def test_an_answer_about_a_customer_erased_while_it_ran_is_not_kept(
    core: KycTierCore, receipt: bool
) -> None:
    """The erasure began (and dropped what was kept about the customer)
    after the request claimed its key, before the answer was kept: the caller
    gets the answer, the key keeps nothing of it and a retry is 410; only an
    erasure's own receipt (ids only) is kept."""
    org_id = await new_org(core)
    customer_id = await new_customer(core, org_id)

    async def erased_meanwhile() -> tuple[bytes, str]:
        await core.erasure.erase(org_id, customer_id, "")
        return b"an answer naming the customer", customer_id

    def run() -> Any:
        return core.idempotency.run(
            org_id, "key-1", "Method", b"request", erased_meanwhile, kept_after_erasure=receipt
        )

    assert await run() == b"an answer naming the customer"
    (row,) = await rows(core, IdempotentRequest, org_id=org_id)
    if receipt:
        assert (row.idempotency_key, row.customer_id) == ("key-1", customer_id)
        assert await run() == b"an answer naming the customer"
        return
    assert (row.idempotency_key, row.response, row.request_sha256) == (
        erased_key("key-1"),
        None,
        ERASED,
    )
    with pytest.raises(FailedPrecondition) as refused:
        await run()
    assert refused.value.reason == "IDEMPOTENCY_KEY_ERASED"
