"""An erasure drops the plain digests of the customer's captures from the
verification rows it keeps, from the attempts and from its audit entries
still in the outbox; nonces still refuse a replay. SQLite and PostgreSQL, fake ports."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from identity_runtime.errors import DomainError, FailedPrecondition
from identity_store import migrate
from identity_store.types import utcnow
from services.kyc_tier import erasures, models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.flows import erasure
from services.kyc_tier.flows.step_up import StepUpRequest
from services.kyc_tier.migrations import HISTORY as KYC_TIER
from tests.integration.test_kyc_trust import (
    onboarded,
    step_up_customer,
    step_up_request,
)
from tests.support.kyc_fakes import (
    KycFakes,
    capture_bundle,
    new_org,
    rows,
)


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


async def _outbox_evidence(core: KycTierCore, customer_id: str) -> list[dict[str, str]]:
    queued = await rows(core, models.AuditOutbox, subject=f"customer:{customer_id}")
    return [dict(row.evidence_hashes) for row in queued]


async def test_an_erasure_blanks_the_customers_digests_in_the_audit_outbox(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """The outbox holds the same capture digests until relayed (and, relayed,
    until the sweep): an erasure drops them there too; the audit entries stay."""
    org_id = await new_org(core)
    customer_id = await onboarded(core, fakes, org_id)
    other_id = await step_up_customer(core, fakes, org_id)
    assert (await core.step_up.step_up(org_id, step_up_request(other_id))).allow
    assert any(e.get("bundle") for e in await _outbox_evidence(core, customer_id))
    other_before = await _outbox_evidence(core, other_id)
    assert any(e.get("bundle") for e in other_before)

    await core.erasure.erase(org_id, customer_id, "")

    evidence = await _outbox_evidence(core, customer_id)
    assert evidence and all(e == {} for e in evidence)
    captured = await rows(core, models.AuditOutbox, action="ktp.capture")
    assert any(row.subject == f"customer:{customer_id}" for row in captured)
    assert await _outbox_evidence(core, other_id) == other_before


async def _put_digests_back(core: KycTierCore, customer_id: str) -> None:
    """The customer's rows as a release before forget_digests left them."""

    def restore(session: Session) -> None:
        session.execute(
            update(models.Verification)
            .where(models.Verification.customer_id == customer_id)
            .values(bundle_sha256="ab" * 32, input_hashes={"bundle": "ab" * 32})
        )
        session.execute(
            update(models.Attempt)
            .where(models.Attempt.customer_id == customer_id)
            .values(bundle_sha256="ab" * 32)
        )
        session.execute(
            update(models.AuditOutbox)
            .where(models.AuditOutbox.subject == f"customer:{customer_id}")
            .values(evidence_hashes={"bundle": "ab" * 32})
        )

    await core.database.run(restore)


async def _digests(core: KycTierCore, customer_id: str) -> list[tuple[str | None, bool]]:
    checks = await rows(core, models.Verification, customer_id=customer_id)
    attempts = await rows(core, models.Attempt, customer_id=customer_id)
    assert checks and attempts
    return [(v.bundle_sha256, bool(v.input_hashes)) for v in checks] + [
        (a.bundle_sha256, False) for a in attempts
    ]


async def test_the_migration_drops_digests_an_older_release_kept_after_an_erasure(
    core: KycTierCore, fakes: KycFakes, database_url: str
) -> None:
    org_id = await new_org(core)
    erased_id = await onboarded(core, fakes, org_id)
    active_id = await step_up_customer(core, fakes, org_id)
    assert (await core.step_up.step_up(org_id, step_up_request(active_id))).allow
    await core.erasure.erase(org_id, erased_id, "")
    await _put_digests_back(core, erased_id)
    active_before = await _digests(core, active_id)
    assert any(digest for digest, _ in active_before)

    outbox_before = await _outbox_evidence(core, active_id)
    assert any(e.get("bundle") for e in outbox_before)

    # The release before 0360, then this one's migrations.
    migrate.downgrade(database_url, KYC_TIER, "0350_console_login_throttles")
    migrate.upgrade(database_url, KYC_TIER)

    erased = await _digests(core, erased_id)
    assert erased == [(None, False)] * len(erased)
    assert await _digests(core, active_id) == active_before
    erased_outbox = await _outbox_evidence(core, erased_id)
    assert erased_outbox and all(e == {} for e in erased_outbox)
    assert await _outbox_evidence(core, active_id) == outbox_before


async def test_the_migration_drops_outbox_digests_an_older_release_kept_after_an_erasure(
    core: KycTierCore, fakes: KycFakes, database_url: str
) -> None:
    """0380 alone: the releases before it (0360, 0370) had blanked
    verifications and attempts but left the outbox's copy."""
    org_id = await new_org(core)
    erased_id = await onboarded(core, fakes, org_id)
    active_id = await onboarded(core, fakes, org_id)
    await core.erasure.erase(org_id, erased_id, "")
    await _put_digests_back(core, erased_id)
    active_before = await _outbox_evidence(core, active_id)

    migrate.downgrade(database_url, KYC_TIER, "0370_org_bound_nik_index")
    migrate.upgrade(database_url, KYC_TIER)

    erased_outbox = await _outbox_evidence(core, erased_id)
    assert erased_outbox and all(e == {} for e in erased_outbox)
    assert await _outbox_evidence(core, active_id) == active_before


async def test_an_erasure_begun_by_an_older_release_drops_the_digests_at_its_last_step(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """Its personal data step was done by a release that kept the digests:
    the last step (kyc.mark_erased) drops them."""
    org_id = await new_org(core)
    customer_id = await onboarded(core, fakes, org_id)
    assert any(digest for digest, _ in await _digests(core, customer_id))
    erasure_id, _ = await core.erasure.store.write(
        lambda s: erasures.record_request(
            s, org_id, customer_id, "", utcnow(), erasure.ErasureFlow.lease
        )
    )
    await core.erasure.store.write(
        lambda s: erasures.done(s, erasure_id, erasures.PERSONAL_DATA, {"keys_destroyed": 0}),
        audited=False,
    )

    assert await core.erasure.carry_out(erasure_id, leased=True)

    found = await _digests(core, customer_id)
    assert found == [(None, False)] * len(found)
