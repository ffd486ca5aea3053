"""Issue 10's trust fixes in kyc-tier's flows, with fake ports, on SQLite and
PostgreSQL: a duplicate face waits for an analyst with its reference held
inactive; an erasure is recorded first, carried out step by step, resumed
after a crash between any two steps, refused under a legal hold and limited
per organisation; a challenge and nonce consumed by liveness always have
an attempt row and audit entries, even when kyc-tier dies right after."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from identity_cli.main import main
from identity_runtime import context
from identity_runtime.errors import DeadlineExceeded, DomainError, Unavailable
from identity_store.types import utcnow
from services.kyc_tier import erasures, models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.customers import CustomerInput
from services.kyc_tier.flows import erasure, replays, step_up
from services.kyc_tier.flows.face import MatchRequest
from services.kyc_tier.flows.ktp import KtpCaptureRequest
from services.kyc_tier.flows.kyc import UpgradeRequest
from services.kyc_tier.flows.step_up import StepUpRequest
from services.kyc_tier.ports import Duplicate, KtpAssessment, KtpField
from services.liveness.checks import ChallengePolicy
from tests.support import cli_errors, unique_name
from tests.support.kyc_fakes import (
    KycFakes,
    assert_audit_entries_acceptable,
    calling_as,
    capture_bundle,
    fake_kyc_core,
    new_org,
    rows,
)

VALID_NIK = "3273024107950003"
CARD = KtpAssessment(
    passed=True,
    reasons=(),
    fields={"nik": KtpField(VALID_NIK, 0.98), "name": KtpField("SITI RAHAYU", 0.91)},
    nik_valid=True,
    tamper=(),
    portrait_found=True,
    ocr_model="fake-ocr",
    portrait_crops="portrait",
)


async def new_customer(core: KycTierCore, org_id: str, nik: str = VALID_NIK) -> str:
    created = await core.customers.create(
        org_id,
        CustomerInput(
            external_id=unique_name("ext"),
            full_name="Siti Rahayu",
            nik=nik,
            email="siti@example.com",
            phone="+6281234567890",
        ),
    )
    return created.customer.customer_id


async def ktp_capture(core: KycTierCore, org_id: str, customer_id: str):
    request = KtpCaptureRequest(customer_id, "chl_k", capture_bundle(frames=1), {"nik": VALID_NIK})
    return await core.ktp.capture(org_id, request)


async def test_a_duplicate_face_needs_review_links_both_and_holds_the_reference(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    fakes.quality.ktp = CARD
    first = await new_customer(core, org_id)
    assert (await ktp_capture(core, org_id, first)).verification.outcome == "passed"

    second = await new_customer(core, org_id)
    fakes.matcher.duplicates = (Duplicate(first, 0.93),)
    result = await ktp_capture(core, org_id, second)

    verification = result.verification
    assert verification.outcome == "needs_review"
    assert [r.code for r in verification.reasons] == ["DUPLICATE_FACE"]
    assert result.tier == "basic"  # a card waiting for review earns nothing yet
    (review,) = await rows(core, models.ReviewItem, customer_id=second)
    assert review.verification_id == verification.verification_id
    assert review.status == "pending"
    assert review.details == {
        "duplicate_customers": [first],
        "enrollment_id": result.enrollment_id,
    }
    (attempt,) = await rows(core, models.Attempt, customer_id=second, kind="ktp_capture")
    assert attempt.outcome == "needs_review"
    (audit,) = await rows(
        core, models.AuditOutbox, action="ktp.capture", subject=f"customer:{second}"
    )
    assert audit.details["duplicate_customers"] == first
    assert audit.outcome == "denied"

    # The held reference is inactive: match and step-up against it do not pass.
    (held,) = fakes.matcher.enrollments[second]
    assert (held.enrollment_id, held.active) == (result.enrollment_id, False)
    with pytest.raises(DomainError) as no_match:
        await core.face.match(org_id, MatchRequest(second, probe_image=b"probe"))
    assert no_match.value.reason == "NO_ACTIVE_ENROLLMENT"
    with pytest.raises(DomainError) as no_step_up:
        await core.step_up.step_up(
            org_id, StepUpRequest(second, "chl_s", capture_bundle(), action="transfer")
        )
    assert no_step_up.value.reason == "NO_ACTIVE_ENROLLMENT"
    # The first customer's reference is untouched.
    assert [e.active for e in fakes.matcher.enrollments[first]] == [True]


async def test_a_failed_card_with_a_duplicate_face_is_failed_not_reviewed(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id = await new_customer(core, org_id)
    fakes.quality.ktp = replace(CARD, passed=False)
    fakes.matcher.duplicates = (Duplicate("cus_other", 0.9),)
    result = await ktp_capture(core, org_id, customer_id)
    assert result.verification.outcome == "failed"
    assert await rows(core, models.ReviewItem, customer_id=customer_id) == []
    assert fakes.embedder.embedded == []


# --- erasure that cannot half-happen ---------------------------------------------------------

CRASH_POINTS = ("recorded", *erasure.STEPS[:-1])


def crash_at(point: str) -> Callable[[str], None]:
    def hook(reached: str) -> None:
        if reached == point:
            raise erasure.ErasureInterrupted(point)

    return hook


async def assert_fully_erased(core: KycTierCore, fakes: KycFakes, customer_id: str) -> None:
    """Nothing half-erased: every step done once, every effect present."""
    (customer,) = await rows(core, models.Customer, customer_id=customer_id)
    assert customer.status == "erased" and customer.erased_at is not None
    assert customer.tier == "none"
    personal = (
        customer.full_name,
        customer.email,
        customer.phone,
        customer.nik_sealed,
        customer.nik_hash,
        customer.nik_masked,
    )
    assert personal == (None,) * 6
    assert customer.external_id == f"erased:{customer_id}"
    keys = await rows(core, models.DataKey, customer_id=customer_id)
    assert keys and all(k.destroyed_at is not None and k.wrapped_key is None for k in keys)
    # The sealed frames are deleted at once (the retention table's erased_frames).
    assert await rows(core, models.CaptureBundle, customer_id=customer_id) == []
    assert customer_id in fakes.matcher.shredded
    assert customer_id in fakes.liveness.forgotten  # the devices' ids and public keys
    assert not any(e.active for e in fakes.matcher.enrollments[customer_id])
    (record,) = await rows(core, models.Erasure, customer_id=customer_id)
    assert record.state == "completed" and record.claimed_until is None
    steps = await rows(core, models.ErasureStep, erasure_id=record.erasure_id)
    assert sorted(s.step for s in steps if s.done_at) == sorted(erasure.STEPS)
    subject = f"customer:{customer_id}"
    (requested,) = await rows(
        core, models.AuditOutbox, action="customer.erase_requested", subject=subject
    )
    (done,) = await rows(core, models.AuditOutbox, action="customer.erase", subject=subject)
    assert done.outcome == "success" and done.details["erasure_id"] == record.erasure_id
    events = [e for e in await rows(core, models.TierEvent, customer_id=customer_id)]
    assert [e.cause for e in events if e.to_tier == "none"] == ["erasure"]


async def onboarded(core: KycTierCore, fakes: KycFakes, org_id: str) -> str:
    """A customer with a NIK (pii key), a sealed capture (bundle key) and a face reference."""
    fakes.quality.ktp = CARD
    customer_id = await new_customer(core, org_id)
    assert (await ktp_capture(core, org_id, customer_id)).verification.outcome == "passed"
    return customer_id


async def test_erasure_answers_a_receipt(core: KycTierCore, fakes: KycFakes) -> None:
    org_id = await new_org(core)
    customer_id = await onboarded(core, fakes, org_id)
    receipt = await core.erasure.erase(org_id, customer_id, "data_subject_request")
    assert receipt.state == "completed"
    assert receipt.enrollments_retired == 1
    # matching's template key, kyc-tier's NIK and bundle keys.
    assert receipt.keys_destroyed == 3
    assert set(receipt.destroyed) == {
        "face_references_retired",
        "face_template_key",
        "personal_fields",
        "nik_key",
        "capture_bundle_key",
        "device_keys",
    }
    retained = {r.record: r for r in receipt.retained}
    assert retained["verifications"].count == 2  # NIK format and the KTP capture
    assert retained["verifications"].retained_until.year == receipt.erased_at.year + 7
    assert retained["face_enrollment_rows"].count == 1
    await assert_fully_erased(core, fakes, customer_id)


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_an_erasure_killed_between_two_steps_completes_after_restart(
    database_url: str, fakes: KycFakes, point: str
) -> None:
    async with fake_kyc_core(database_url, fakes) as first:
        org_id = await new_org(first)
        customer_id = await onboarded(first, fakes, org_id)
        first.erasure.fault = crash_at(point)
        with pytest.raises(erasure.ErasureInterrupted):
            await first.erasure.erase(org_id, customer_id, "data_subject_request")
        # Between the crash and the restart the customer is already refused.
        (customer,) = await rows(first, models.Customer, customer_id=customer_id)
        assert customer.status == "erasing"
        with pytest.raises(DomainError) as refused:
            await first.step_up.step_up(
                org_id, StepUpRequest(customer_id, "chl_s", capture_bundle(), action="transfer")
            )
        assert refused.value.reason == "CUSTOMER_ERASED"

    # The restarted process (its clock past the dead one's lease) resumes at start-up.
    later = erasure.ErasureFlow.lease + timedelta(seconds=1)
    async with fake_kyc_core(database_url, fakes, clock=lambda: utcnow() + later) as restarted:
        async with asyncio.timeout(30):
            await restarted.recovery.first_pass.wait()
        await assert_fully_erased(restarted, fakes, customer_id)
        assert await assert_audit_entries_acceptable(restarted)
        receipt = await restarted.erasure.erase(org_id, customer_id, "")
        assert receipt.state == "completed" and receipt.enrollments_retired == 1


async def test_an_erasure_whose_dependency_is_down_is_finished_by_the_worker(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id = await onboarded(core, fakes, org_id)
    working_shred = fakes.matcher.shred

    async def down(customer_id: str) -> int:
        raise Unavailable("matching is unavailable")

    fakes.matcher.shred = down  # type: ignore[method-assign]
    receipt = await core.erasure.erase(org_id, customer_id, "")
    assert receipt.state == "in_progress" and receipt.erased_at is None
    assert receipt.destroyed == (
        "personal_fields",
        "nik_key",
        "capture_bundle_key",
        "face_references_retired",
    )
    (record,) = await rows(core, models.Erasure, customer_id=customer_id)
    assert (record.state, record.last_error) == ("requested", "DEPENDENCY_UNAVAILABLE")
    # While matching is down, the personal data is already gone.
    (customer,) = await rows(core, models.Customer, customer_id=customer_id)
    assert (customer.full_name, customer.nik_sealed, customer.nik_hash) == (None, None, None)
    assert await rows(core, models.CaptureBundle, customer_id=customer_id) == []

    fakes.matcher.shred = working_shred  # type: ignore[method-assign]
    assert await core.erasure.resume_pending() == 1
    await assert_fully_erased(core, fakes, customer_id)


async def test_an_erasure_held_up_before_matching_retired_does_not_count_the_references(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """Matching down before it retired the references: the receipt does not
    claim a count of enrollment rows it does not know yet (black-box probe 7,
    D14: `counted: true, count: 0` for a customer with an active reference);
    once matching retired them, it counts them."""
    org_id = await new_org(core)
    customer_id = await onboarded(core, fakes, org_id)
    working_retire = fakes.matcher.retire

    async def down(*args: Any, **kwargs: Any) -> int:
        raise Unavailable("matching is unavailable")

    fakes.matcher.retire = down  # type: ignore[method-assign]
    pending = await core.erasure.erase(org_id, customer_id, "")
    assert pending.state == "in_progress"
    rows_kept = {r.record: r for r in pending.retained}["face_enrollment_rows"]
    assert (rows_kept.counted, rows_kept.count) == (False, None)

    fakes.matcher.retire = working_retire  # type: ignore[method-assign]
    done = await core.erasure.erase(org_id, customer_id, "")
    assert done.state == "completed"
    rows_kept = {r.record: r for r in done.retained}["face_enrollment_rows"]
    assert (rows_kept.counted, rows_kept.count) == (True, 1)


async def test_a_legal_hold_refuses_erasure(core: KycTierCore, fakes: KycFakes) -> None:
    org_id = await new_org(core)
    customer_id = await onboarded(core, fakes, org_id)
    held = await core.erasure.set_legal_hold(org_id, customer_id, True, "case-7")
    assert held.legal_hold
    with pytest.raises(DomainError) as refused:
        await core.erasure.erase(org_id, customer_id, "")
    assert (refused.value.code, refused.value.reason) == ("FAILED_PRECONDITION", "LEGAL_HOLD")
    assert fakes.matcher.shredded == set()
    assert await rows(core, models.Erasure, customer_id=customer_id) == []
    (customer,) = await rows(core, models.Customer, customer_id=customer_id)
    assert customer.status == "active" and customer.nik_sealed is not None


@pytest.mark.parametrize(
    "reason",
    [
        "customer Siti Rahayu asked",  # prose: a name cannot be recognised
        "3171234567890001",
        "asked-by-ani@example.co.id",
        "call_081234567890",
        "case\n7",
        "x" * 65,
    ],
)
async def test_a_reason_that_is_not_a_code_is_refused_and_nothing_is_written(
    core: KycTierCore, fakes: KycFakes, reason: str
) -> None:
    """Reasons are chained into the audit log, which is never erased: only
    codes reach it, nothing that could name the customer."""
    org_id = await new_org(core)
    customer_id = await onboarded(core, fakes, org_id)
    for attempt in (
        lambda: core.erasure.erase(org_id, customer_id, reason),
        lambda: core.erasure.set_legal_hold(org_id, customer_id, True, reason),
    ):
        with pytest.raises(DomainError) as refused:
            await attempt()
        assert (refused.value.reason, refused.value.metadata["field"]) == (
            "INVALID_FIELD",
            "reason",
        )
        assert reason not in refused.value.message
    assert fakes.matcher.shredded == set()
    assert await rows(core, models.Erasure, customer_id=customer_id) == []
    (customer,) = await rows(core, models.Customer, customer_id=customer_id)
    assert customer.status == "active" and customer.legal_hold_since is None
    for action in ("customer.erase", "customer.legal_hold"):
        assert await rows(core, models.AuditOutbox, action=action) == []


async def test_the_eleventh_erasure_in_five_minutes_is_refused(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    made = [await new_customer(core, org_id) for _ in range(11)]
    for customer_id in made[:10]:
        assert (await core.erasure.erase(org_id, customer_id, "")).state == "completed"
    with pytest.raises(DomainError) as limited:
        await core.erasure.erase(org_id, made[10], "")
    assert (limited.value.code, limited.value.reason) == ("RESOURCE_EXHAUSTED", "RATE_LIMITED")
    # Another organisation has its own count.
    other = await new_org(core)
    assert (await core.erasure.erase(other, await new_customer(core, other), "")).erasure_id


async def test_the_cli_places_and_lifts_a_legal_hold(
    database_url: str, core: KycTierCore, fakes: KycFakes, capsys: pytest.CaptureFixture[str]
) -> None:
    org_id = await new_org(core)
    customer_id = await new_customer(core, org_id)

    def cli(*args: str) -> int:
        return main(["customers", "legal-hold", *args, "--database-url", database_url])

    assert (
        await asyncio.to_thread(cli, customer_id, "--org", org_id, "--on", "--reason", "c-9") == 0
    )
    # The command's own line is the last (the core it builds may log its start-up sweep first).
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"{customer_id}: legal hold on"
    with pytest.raises(DomainError) as refused:
        await core.erasure.erase(org_id, customer_id, "")
    assert refused.value.reason == "LEGAL_HOLD"
    (audit,) = await rows(core, models.AuditOutbox, action="customer.legal_hold")
    assert (audit.actor, audit.details["reason"]) == ("system:identity-cli", "c-9")

    assert await asyncio.to_thread(cli, customer_id, "--org", org_id, "--off") == 0
    assert (await core.erasure.erase(org_id, customer_id, "")).state == "completed"
    # Refusals: one line, exit status 2, nothing written.
    assert await asyncio.to_thread(cli, "cus_unknown", "--org", org_id, "--on") == 2
    assert "no such customer" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, customer_id, "--org", org_id, "--on") == 2
    assert "erased" in capsys.readouterr().err


@pytest.mark.parametrize(
    "reason", ["Siti Rahayu", "case 114", "SitiRahayu3273024107950003", "x" * 65, "kasus-ü"]
)
async def test_the_cli_refuses_a_legal_hold_reason_the_route_refuses(
    database_url: str,
    core: KycTierCore,
    fakes: KycFakes,
    capsys: pytest.CaptureFixture[str],
    reason: str,
) -> None:
    """The reason is chained into the audit log, which no erasure removes: the
    CLI applies the route's rule (one line, exit 2, nothing held or queued)."""
    org_id = await new_org(core)
    customer_id = await new_customer(core, org_id)
    args = ["customers", "legal-hold", customer_id, "--org", org_id, "--on", "--reason", reason]

    status = await asyncio.to_thread(main, [*args, "--database-url", database_url])

    assert status == 2
    [line] = cli_errors(capsys.readouterr().err)
    assert line.startswith("identity customers legal-hold: reason: must be")
    assert reason not in line
    (customer,) = await rows(core, models.Customer, customer_id=customer_id)
    assert customer.legal_hold_since is None and customer.legal_hold_reason is None
    assert await rows(core, models.AuditOutbox, action="customer.legal_hold") == []


# --- the crash window: a consumed challenge and nonce always have an attempt ----------------


def consume_then_fail(fakes: KycFakes) -> None:
    """Liveness consumes the challenge and the nonce, then kyc-tier fails."""
    consume = fakes.liveness.check

    async def check(*args: Any, **kwargs: Any) -> Any:
        await consume(*args, **kwargs)
        raise RuntimeError("kyc-tier dies here")

    fakes.liveness.check = check  # type: ignore[method-assign]


async def step_up_customer(core: KycTierCore, fakes: KycFakes, org_id: str) -> str:
    customer_id = await new_customer(core, org_id)
    fakes.matcher.enroll_reference(customer_id)
    return customer_id


def step_up_request(customer_id: str) -> StepUpRequest:
    return StepUpRequest(customer_id, "chl_s", capture_bundle(), action="transfer")


async def assert_interrupted(core: KycTierCore, customer_id: str) -> None:
    (attempt,) = await rows(core, models.Attempt, customer_id=customer_id, kind="step_up")
    assert attempt.outcome == "interrupted"
    assert [r["code"] for r in attempt.reasons] == ["INTERRUPTED"]
    subject = f"customer:{customer_id}"
    (started,) = await rows(core, models.AuditOutbox, action="attempt.started", subject=subject)
    assert started.details == {"attempt_id": attempt.attempt_id, "kind": "step_up"}
    (failed,) = await rows(core, models.AuditOutbox, action="stepup.decide", subject=subject)
    assert (failed.outcome, failed.details["reason"]) == ("failed", "INTERRUPTED")
    assert await rows(core, models.Verification, customer_id=customer_id, kind="step_up") == []


async def test_a_failure_after_the_nonce_is_consumed_leaves_an_interrupted_attempt(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id = await step_up_customer(core, fakes, org_id)
    consume_then_fail(fakes)
    with pytest.raises(RuntimeError):
        await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert len(fakes.liveness.checks) == 1  # the challenge and the nonce were consumed
    await assert_interrupted(core, customer_id)


@pytest.mark.parametrize(
    "outage",
    [
        Unavailable("the embedding service is unavailable"),
        Unavailable("the embedding service is unavailable", "CIRCUIT_OPEN"),
        DeadlineExceeded("the embedding service did not answer in time"),
    ],
    ids=["unavailable", "circuit-open", "deadline"],
)
async def test_an_outage_after_the_nonce_is_consumed_is_resumed_by_the_retry(
    core: KycTierCore, fakes: KycFakes, outage: DomainError
) -> None:
    """Embedding is down after liveness spent the nonce and the challenge
    (black-box probe 7, D1/D2): the attempt is interrupted, not refused (the
    outage named as its cause, audited as failed), so the retry of the same
    bundle resumes it and is decided, instead of NONCE_REPLAYED."""
    org_id = await new_org(core)
    customer_id = await step_up_customer(core, fakes, org_id)
    request = step_up_request(customer_id)
    embed = fakes.embedder.embed

    async def down(crops: object) -> Any:
        raise outage

    fakes.embedder.embed = down  # type: ignore[method-assign]
    with pytest.raises(DomainError) as failed:
        await core.step_up.step_up(org_id, request)
    assert (failed.value.code, failed.value.reason) == (outage.code, outage.reason)
    assert len(fakes.liveness.checks) == 1  # the challenge and the nonce were spent
    (attempt,) = await rows(core, models.Attempt, customer_id=customer_id, kind="step_up")
    assert attempt.outcome == "interrupted"
    assert [r["code"] for r in attempt.reasons] == ["INTERRUPTED", outage.reason]
    subject = f"customer:{customer_id}"
    (audited,) = await rows(core, models.AuditOutbox, action="stepup.decide", subject=subject)
    assert audited.outcome == "failed"
    assert audited.details == {
        "attempt_id": attempt.attempt_id,
        "reason": "INTERRUPTED",
        "cause": outage.reason,
    }

    fakes.embedder.embed = embed  # type: ignore[method-assign]
    result = await core.step_up.step_up(org_id, request)
    assert result.allow and not result.replayed
    assert fakes.liveness.resumed == [False, True]
    recorded = await rows(core, models.Verification, customer_id=customer_id, kind="step_up")
    assert [v.verification_id for v in recorded] == [result.verification_id]
    again = await core.step_up.step_up(org_id, request)
    assert again.replayed and again.verification_id == result.verification_id


async def test_a_crash_after_the_nonce_is_consumed_is_finished_at_the_next_start(
    database_url: str, fakes: KycFakes
) -> None:
    async with fake_kyc_core(database_url, fakes) as first:
        org_id = await new_org(first)
        customer_id = await step_up_customer(first, fakes, org_id)
        consume_then_fail(fakes)

        async def dies(*args: Any) -> None:  # the process is gone: no handler runs
            return None

        first.step_up.pipeline._interrupt = dies  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            await first.step_up.step_up(org_id, step_up_request(customer_id))
        (attempt,) = await rows(first, models.Attempt, customer_id=customer_id, kind="step_up")
        assert attempt.outcome == "started"  # recorded before liveness was called
        (started,) = await rows(first, models.AuditOutbox, action="attempt.started")
        assert started.subject == f"customer:{customer_id}"

    # The next start (well past any request's deadline) finishes it.
    later = timedelta(minutes=6)
    async with fake_kyc_core(database_url, fakes, clock=lambda: utcnow() + later) as restarted:
        await assert_interrupted(restarted, customer_id)
        assert await assert_audit_entries_acceptable(restarted)


async def test_after_a_crash_a_retry_of_the_same_bundle_waits_then_completes_it(
    database_url: str, fakes: KycFakes
) -> None:
    """The crash left the attempt started after liveness spent the nonce: while
    it may still be running, the same bundle is told to retry; once it cannot
    be (IN_PROGRESS_FOR, 45 s: an assessment's calls end within 30 s), the
    retry resumes it and records one verification, while the challenge it
    answers still lives (black-box probe 7, D16: the bundle was locked out
    for two minutes, as long as the challenge lived, so the first retry that
    could resume met CHALLENGE_EXPIRED)."""
    async with fake_kyc_core(database_url, fakes) as first:
        org_id = await new_org(first)
        customer_id = await step_up_customer(first, fakes, org_id)
        request = step_up_request(customer_id)
        consume_then_fail(fakes)

        async def dies(*args: Any) -> None:  # the process is gone: no handler runs
            return None

        first.step_up.pipeline._interrupt = dies  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            await first.step_up.step_up(org_id, request)
        del fakes.liveness.check  # liveness answers again
        with pytest.raises(DomainError) as busy:
            await first.step_up.step_up(org_id, request)
        assert (busy.value.code, busy.value.reason) == ("ABORTED", "CAPTURE_IN_PROGRESS")

    later = replays.IN_PROGRESS_FOR + timedelta(seconds=5)
    assert later < timedelta(seconds=ChallengePolicy().ttl_seconds)
    async with fake_kyc_core(database_url, fakes, clock=lambda: utcnow() + later) as restarted:
        result = await restarted.step_up.step_up(org_id, request)
        assert result.allow and not result.replayed
        assert fakes.liveness.resumed == [False, True]
        recorded = await rows(restarted, models.Verification, customer_id=customer_id)
        assert [v.kind for v in recorded] == ["nik_format", "step_up"]
        again = await restarted.step_up.step_up(org_id, request)
        assert again.replayed and again.verification_id == result.verification_id


async def test_an_assessment_runs_under_a_capped_deadline(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """A call that allows the capture ten minutes still gives its assessment
    at most ASSESS_FOR: the downstream calls end within it, so a started
    attempt older than IN_PROGRESS_FOR cannot still be running."""
    org_id = await new_org(core)
    customer_id = await step_up_customer(core, fakes, org_id)
    seen: list[float | None] = []
    embed = fakes.embedder.embed

    async def remembering(crops: object) -> Any:
        bound = context.current()
        seen.append(bound.time_remaining() if bound else None)
        return await embed(crops)

    fakes.embedder.embed = remembering  # type: ignore[method-assign]
    bound = context.CallContext(request_id="req_capped", deadline=time.monotonic() + 600)
    token = context.bind(bound)
    try:
        result = await core.step_up.step_up(org_id, step_up_request(customer_id))
    finally:
        context.reset(token)
    assert result.allow
    assert seen and all(
        r is not None and 0 < r <= replays.ASSESS_FOR.total_seconds() for r in seen
    ), seen
    assert replays.ASSESS_FOR < replays.IN_PROGRESS_FOR


async def test_a_live_request_is_not_swept(core: KycTierCore, fakes: KycFakes) -> None:
    org_id = await new_org(core)
    customer_id = await step_up_customer(core, fakes, org_id)
    subject = await core.step_up.pipeline.begin(step_up.STEP, org_id, customer_id)
    assert await core.recovery.passes[1]() == 0
    (attempt,) = await rows(core, models.Attempt, attempt_id=subject.attempt_id)
    assert attempt.outcome == "started"


# --- the analyst decides a duplicate face ----------------------------------------------------


async def duplicate_review(core: KycTierCore, fakes: KycFakes, org_id: str) -> tuple[str, str]:
    """A second customer whose card portrait is the first's: (customer, review id)."""
    fakes.quality.ktp = CARD
    first = await new_customer(core, org_id)
    await ktp_capture(core, org_id, first)
    second = await new_customer(core, org_id)
    fakes.matcher.duplicates = (Duplicate(first, 0.93),)
    await ktp_capture(core, org_id, second)
    fakes.matcher.duplicates = ()
    (review,) = await rows(core, models.ReviewItem, customer_id=second)
    return second, review.review_id


async def test_approving_a_duplicate_face_activates_the_held_reference(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    token = context.bind(
        context.CallContext(request_id="r", org_id=org_id, actor="api_key:key_analyst")
    )
    try:
        decided = await core.reviews.decide(org_id, review_id, "approve", "same person")
    finally:
        context.reset(token)
    assert (decided.item.status, decided.item.decided_by) == ("approved", "api_key:key_analyst")
    assert [e.active for e in fakes.matcher.enrollments[customer_id]] == [True]
    result = await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert result.allow
    (audit,) = await rows(core, models.AuditOutbox, action="review.decide")
    assert audit.details["decision"] == "approved"
    # The approved item is what an upgrade cites to grant the tier.
    with calling_as(org_id, "internal"):
        upgraded = await core.kyc.upgrade(
            org_id, customer_id, UpgradeRequest("standard", review_id=review_id)
        )
    assert upgraded.tier == "standard"
    with pytest.raises(DomainError) as again:
        await core.reviews.decide(org_id, review_id, "reject", "")
    assert again.value.reason == "REVIEW_ALREADY_DECIDED"


async def test_rejecting_a_duplicate_face_retires_only_the_held_reference(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    selfie = fakes.matcher.enroll_reference(customer_id, "onboarding_selfie")
    decided = await core.reviews.decide(org_id, review_id, "reject", "")
    assert decided.item.status == "rejected"
    by_id = {e.enrollment_id: e for e in fakes.matcher.enrollments[customer_id]}
    assert by_id[selfie].active and by_id[selfie].retired_at is None
    (held,) = [e for e in by_id.values() if e.enrollment_id != selfie]
    assert held.retired_at is not None and not held.active


async def test_review_decision_refusals(core: KycTierCore, fakes: KycFakes) -> None:
    org_id = await new_org(core)
    _, review_id = await duplicate_review(core, fakes, org_id)
    refusals = (
        ((org_id, "rev_unknown", "approve", ""), "REVIEW_NOT_FOUND"),
        ((await new_org(core), review_id, "approve", ""), "REVIEW_NOT_FOUND"),
        ((org_id, review_id, "", ""), "INVALID_FIELD"),
        ((org_id, review_id, "approve", "x" * 1001), "INVALID_FIELD"),
        ((org_id, "", "approve", ""), "INVALID_FIELD"),
    )
    for args, reason in refusals:
        with pytest.raises(DomainError) as refused:
            await core.reviews.decide(*args)
        assert refused.value.reason == reason, args
    (review,) = await rows(core, models.ReviewItem, review_id=review_id)
    assert review.status == "pending"


async def test_a_crash_between_a_matching_call_and_its_mark_is_redone_harmlessly(
    database_url: str, fakes: KycFakes
) -> None:
    """Killed after matching shredded the key but before kyc-tier marked the
    step: the restarted core shreds again (a no-op) and completes."""
    async with fake_kyc_core(database_url, fakes) as first:
        org_id = await new_org(first)
        customer_id = await onboarded(first, fakes, org_id)
        shred = fakes.matcher.shred

        async def shred_then_die(customer_id: str) -> int:
            await shred(customer_id)
            raise erasure.ErasureInterrupted("after the shred, before its mark")

        fakes.matcher.shred = shred_then_die  # type: ignore[method-assign]
        with pytest.raises(erasure.ErasureInterrupted):
            await first.erasure.erase(org_id, customer_id, "")
        fakes.matcher.shred = shred  # type: ignore[method-assign]

    later = erasure.ErasureFlow.lease + timedelta(seconds=1)
    async with fake_kyc_core(database_url, fakes, clock=lambda: utcnow() + later) as restarted:
        await assert_fully_erased(restarted, fakes, customer_id)
        receipt = await restarted.erasure.receipt(org_id, customer_id)
    assert receipt.state == "completed" and "face_template_key" in receipt.destroyed
    # The redone shred destroyed nothing new, so the count misses matching's key:
    # the receipt's `destroyed` list, not the count, is the record of what is gone.
    assert receipt.keys_destroyed == 2


async def test_a_capture_that_ends_after_an_erasure_was_requested_is_refused(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """The erasure is requested while the step-up is with the mesh: nothing
    is recorded for the customer, the attempt is refused and audited."""
    org_id = await new_org(core)
    customer_id = await step_up_customer(core, fakes, org_id)
    check = fakes.liveness.check

    async def erasure_meanwhile(*args: Any, **kwargs: Any) -> Any:
        decision = await check(*args, **kwargs)
        await core.erasure.store.write(
            lambda s: erasures.record_request(
                s, org_id, customer_id, "", utcnow(), erasure.ErasureFlow.lease
            )
        )
        return decision

    fakes.liveness.check = erasure_meanwhile  # type: ignore[method-assign]
    with pytest.raises(DomainError) as refused:
        await core.step_up.step_up(org_id, step_up_request(customer_id))
    assert refused.value.reason == "CUSTOMER_ERASED"
    (attempt,) = await rows(core, models.Attempt, customer_id=customer_id, kind="step_up")
    assert (attempt.outcome, attempt.reasons[0]["code"]) == ("refused", "CUSTOMER_ERASED")
    assert await rows(core, models.Verification, customer_id=customer_id, kind="step_up") == []
    assert await rows(core, models.CaptureBundle, customer_id=customer_id) == []


async def test_the_worker_leaves_an_erasure_to_the_request_that_recorded_it(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """A worker pass right after the request is recorded does not take it
    (the request holds the lease from the start); the request completes it."""
    org_id = await new_org(core)
    customer_id = await onboarded(core, fakes, org_id)
    erasure_id, leased = await core.erasure.store.write(
        lambda s: erasures.record_request(
            s, org_id, customer_id, "", utcnow(), erasure.ErasureFlow.lease
        )
    )
    assert leased
    assert await core.erasure.resume_pending() == 0
    (record,) = await rows(core, models.Erasure, erasure_id=erasure_id)
    assert record.state == "requested" and record.attempts == 1
    assert await core.erasure.carry_out(erasure_id, leased=True)
    await assert_fully_erased(core, fakes, customer_id)


async def test_a_dukcapil_portrait_of_another_customers_face_waits_for_review(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """As a KTP card does: the `dukcapil` reference is held inactive by
    matching, the verdict needs review, the tier waits, nothing else moves."""
    from services.kyc_tier.flows.dukcapil import DukcapilRequest, DukcapilVerdict

    org_id = await new_org(core)
    first, second = await new_customer(core, org_id), await new_customer(core, org_id)
    fakes.matcher.duplicates = (Duplicate(first, 0.91),)
    verdict = DukcapilVerdict({"nik": True}, 0.0, "DKC-D", datetime.now(UTC) - timedelta(hours=1))
    result = await core.dukcapil.submit(
        org_id, DukcapilRequest(second, verdict, portrait=b"registry portrait")
    )
    verification = result.recorded.verification
    assert verification.outcome == "needs_review"
    assert [r.code for r in verification.reasons] == ["DUPLICATE_FACE"]
    assert result.recorded.tier == "basic"
    (held,) = fakes.matcher.enrollments[second]
    assert (held.source, held.active) == ("dukcapil", False)
    (review,) = await rows(core, models.ReviewItem, customer_id=second)
    assert review.details == {"duplicate_customers": [first], "enrollment_id": held.enrollment_id}
    assert verification.input_hashes["portrait"] == hashlib.sha256(b"registry portrait").hexdigest()
