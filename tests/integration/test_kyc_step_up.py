"""Step-up as a table, through the real flow with fake ports: kyc-tier's core
from `bootstrap.build(settings, overrides=...)` on a SQLite database migrated
once for the module. No process, no network, no model.

Each decision is a verification row, an attempt row, the bundle sealed for
90 days and an audit entry; each refusal is an attempt row and an audit entry
and nothing else; neither changes the tier.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event

from identity_runtime import context
from identity_runtime.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
)
from services.kyc_tier import models
from services.kyc_tier.customers import CustomerInput
from services.kyc_tier.flows.step_up import StepUpRequest, StepUpResult
from services.kyc_tier.ports import LivenessDecision, Reason
from tests.support import unique_name
from tests.support.kyc_fakes import (
    GOOD_FACE,
    NO_FACE,
    PAD_ATTACK,
    KycFakes,
    capture_bundle,
    new_org,
    rows,
)
from tests.unit.test_kyc_step_up_decision import BLURRED

VALID_NIK = "3273024107950003"


async def new_customer(kyc_core, kyc_fakes: KycFakes, org_id: str, enrolled: bool = True) -> str:
    created = await kyc_core.customers.create(
        org_id, CustomerInput(external_id=unique_name("ext"), nik=VALID_NIK)
    )
    customer_id = created.customer.customer_id
    if enrolled:
        kyc_fakes.matcher.enroll_reference(customer_id)
    return customer_id


async def step_up(kyc_core, org_id: str, customer_id: str, **changes) -> StepUpResult:
    request = StepUpRequest(customer_id, "chl_1", capture_bundle(), action="transfer")
    return await kyc_core.step_up.step_up(org_id, replace(request, **changes))


def low_score(fakes: KycFakes) -> None:
    fakes.matcher.score = 0.1


def pad_attack(fakes: KycFakes) -> None:
    fakes.liveness.decision = PAD_ATTACK


def not_live_without_reason(fakes: KycFakes) -> None:
    fakes.liveness.decision = LivenessDecision(False, 0.3, 0.2, (), "pad+challenge")


def blurred(fakes: KycFakes) -> None:
    fakes.quality.face = BLURRED


def no_face(fakes: KycFakes) -> None:
    fakes.quality.face = NO_FACE


def another_person_on_the_flash_frames(fakes: KycFakes) -> None:
    fakes.matcher.frames_score = 0.12


def nothing(fakes: KycFakes) -> None:
    return None


PARTNER_IMAGE = {"reference_image": b"partner reference image"}

# case id: (arrange the kyc_fakes, enrolled, request changes, allow, reasons, matched against)
DECISIONS = {
    "allow": (nothing, True, {}, True, [], "customer"),
    "face mismatch": (low_score, True, {}, False, ["FACE_MISMATCH"], "customer"),
    "PAD attack": (pad_attack, True, {}, False, ["PAD_ATTACK_SUSPECTED"], "customer"),
    "another person on the flash frames": (
        another_person_on_the_flash_frames,
        True,
        {},
        False,
        ["FACE_CHANGED_BETWEEN_FRAMES"],
        "customer",
    ),
    "not live": (not_live_without_reason, True, {}, False, ["LIVENESS_FAILED"], "customer"),
    "quality failure": (
        blurred,
        True,
        {},
        False,
        ["QUALITY_FAILED", "BLUR_TOO_HIGH"],
        "customer",
    ),
    "no face in the capture": (no_face, True, {}, False, ["FACE_NOT_FOUND"], None),
    "partner reference image, no enrollment needed": (
        nothing,
        False,
        PARTNER_IMAGE,
        True,
        [],
        "reference",
    ),
    "partner reference image, mismatch": (
        low_score,
        False,
        PARTNER_IMAGE,
        False,
        ["FACE_MISMATCH"],
        "reference",
    ),
}


@pytest.mark.parametrize(
    ("arrange", "enrolled", "changes", "allow", "codes", "matched"),
    DECISIONS.values(),
    ids=DECISIONS.keys(),
)
async def test_step_up_decides_and_records(
    kyc_core, kyc_fakes, kyc_org, arrange, enrolled, changes, allow, codes, matched
) -> None:
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org, enrolled)
    arrange(kyc_fakes)
    result = await step_up(kyc_core, kyc_org, customer_id, **changes)

    assert result.allow is allow
    assert [r.code for r in result.reasons] == codes
    # A flash frame's face against the baseline's first, at the deployment's
    # threshold; then the probe against the reference.
    expected_match = {
        "customer": [("frames", None), (customer_id, None)],
        "reference": [("frames", None), ("reference", None)],
    }
    assert kyc_fakes.matcher.verified == expected_match.get(matched, [])
    (verification,) = await rows(
        kyc_core, models.Verification, customer_id=customer_id, kind="step_up"
    )
    assert verification.verification_id == result.verification_id
    assert verification.outcome == ("passed" if allow else "failed")
    assert verification.details["action"] == "transfer"
    (sealed,) = await rows(kyc_core, models.CaptureBundle, verification_id=result.verification_id)
    assert sealed.retention_class == "step_up"
    assert sealed.sha256 == verification.bundle_sha256
    (audit,) = await rows(kyc_core, models.AuditOutbox, action="stepup.decide")
    assert audit.outcome == ("success" if allow else "denied")
    assert audit.details["verification_id"] == result.verification_id
    # The answer, the record and the audit entry name the reference used.
    reference = "partner_image" if "reference_image" in changes else "enrolled"
    assert result.reference_source == verification.details["reference"] == reference
    assert audit.details["reference_source"] == reference
    assert audit.evidence_hashes == {"bundle": sealed.sha256}
    # Step-up never moves the tier: the customer stays basic (its NIK).
    (customer,) = await rows(kyc_core, models.Customer, customer_id=customer_id)
    assert customer.tier == "basic"


async def _delete_step_up_audit(kyc_core) -> None:
    """Each test reads its own stepup.decide entries: clear the previous ones."""

    def clear(session) -> None:
        session.query(models.AuditOutbox).filter_by(action="stepup.decide").delete()

    await kyc_core.database.run(clear)


@pytest.fixture(autouse=True)
async def _own_audit_entries(kyc_core) -> None:
    await _delete_step_up_audit(kyc_core)


async def assert_refused(kyc_core, customer_id: str, reason: str, verifications: int = 0) -> None:
    """A refusal: an attempt row with the reason and a denied audit entry, no verification."""
    attempts = await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="step_up")
    refused = [a for a in attempts if a.outcome == "refused"]
    assert [a.reasons[0]["code"] for a in refused] == [reason]
    assert refused[0].verification_id is None
    assert len(await rows(kyc_core, models.Verification, customer_id=customer_id)) == verifications
    denied = await rows(kyc_core, models.AuditOutbox, action="stepup.decide", outcome="denied")
    assert [e.details["reason"] for e in denied] == [reason]


async def test_no_active_enrollment_is_refused(kyc_core, kyc_fakes, kyc_org) -> None:
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org, enrolled=False)
    with pytest.raises(DomainError) as refused:
        await step_up(kyc_core, kyc_org, customer_id)
    assert (refused.value.code, refused.value.reason) == (
        "FAILED_PRECONDITION",
        "NO_ACTIVE_ENROLLMENT",
    )
    assert kyc_fakes.quality.face_calls == []  # refused before any capture was assessed
    await assert_refused(kyc_core, customer_id, "NO_ACTIVE_ENROLLMENT", verifications=1)


async def test_the_same_bundle_again_is_the_original_decision_and_another_is_refused(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """Seed 001: a repeat with the same nonce returns the original verification
    (a partner retrying after a timeout); the nonce with another bundle is a replay."""
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    bundle = capture_bundle()
    first = await step_up(kyc_core, kyc_org, customer_id, bundle=bundle)
    assert first.allow is True and first.replayed is False
    again = await step_up(kyc_core, kyc_org, customer_id, bundle=bundle)
    assert again.replayed is True
    assert (again.allow, again.verification_id, again.reasons) == (
        first.allow,
        first.verification_id,
        first.reasons,
    )
    assert (again.liveness.live, again.liveness.pad_score) == (True, first.liveness.pad_score)
    assert again.match is not None and first.match is not None
    assert (again.match.match, again.match.score) == (True, first.match.score)
    assert len(kyc_fakes.liveness.checks) == 1  # the repeat never reached liveness
    assert len(kyc_fakes.quality.face_calls) == 1  # nor capture-quality
    # The repeat wrote nothing: one attempt, the first one's.
    assert len(await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="step_up")) == 1
    await _delete_step_up_audit(kyc_core)
    other = replace(bundle, frames=(b"another selfie", b"frame-1"))
    with pytest.raises(DomainError) as refused:
        await step_up(kyc_core, kyc_org, customer_id, bundle=other)
    assert (refused.value.code, refused.value.reason) == ("ALREADY_EXISTS", "NONCE_REPLAYED")
    assert len(kyc_fakes.liveness.checks) == 1
    # The NIK_FORMAT verification and the first step-up; nothing for the others.
    await assert_refused(kyc_core, customer_id, "NONCE_REPLAYED", verifications=2)


async def test_a_replay_answers_only_the_action_it_was_decided_for(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """Probe4 finding 6: `action` is not in the bundle's digest, so the same
    bundle sent again for another action must not answer `allow` for it: it is
    refused (a refused attempt, audited), the original replay still answers,
    naming its action, and nothing reaches the mesh."""
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    bundle = capture_bundle()
    first = await step_up(kyc_core, kyc_org, customer_id, bundle=bundle, action="login")
    assert (first.allow, first.replayed, first.action) == (True, False, "login")

    for other in ("transfer", ""):
        with pytest.raises(DomainError) as refused:
            await step_up(kyc_core, kyc_org, customer_id, bundle=bundle, action=other)
        assert (refused.value.code, refused.value.reason) == (
            "ALREADY_EXISTS",
            "STEP_UP_REPLAYED_FOR_OTHER_ACTION",
        )
    again = await step_up(kyc_core, kyc_org, customer_id, bundle=bundle, action="login")
    assert (again.allow, again.replayed, again.action) == (True, True, "login")
    assert again.verification_id == first.verification_id
    assert len(kyc_fakes.liveness.checks) == 1 and len(kyc_fakes.quality.face_calls) == 1
    attempts = await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="step_up")
    refused_codes = [a.reasons[0]["code"] for a in attempts if a.outcome == "refused"]
    assert refused_codes == ["STEP_UP_REPLAYED_FOR_OTHER_ACTION"] * 2
    denied = await rows(kyc_core, models.AuditOutbox, action="stepup.decide", outcome="denied")
    assert [e.details["reason"] for e in denied] == ["STEP_UP_REPLAYED_FOR_OTHER_ACTION"] * 2
    # The NIK_FORMAT verification and the one step-up decision.
    assert len(await rows(kyc_core, models.Verification, customer_id=customer_id)) == 2


async def test_a_step_up_writes_in_two_transactions_of_seven_statements(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """The request path's database work (issue 15, "transactions cut to what
    atomicity needs"): the attempt's start, with the replay look-up, and the
    decision's record. The outbox relay's own transactions are not the
    request's. A change that adds a statement here should say why."""
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    await step_up(kyc_core, kyc_org, customer_id)  # the customer's bundle key exists now
    transactions: list[list[str]] = []
    in_request: contextvars.ContextVar[bool] = contextvars.ContextVar("in_request", default=False)

    def began(_connection: Any) -> None:
        if in_request.get():
            transactions.append([])

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if in_request.get() and not sql.startswith("BEGIN"):
            transactions[-1].append(sql.split("(")[0][:40])

    engine = kyc_core.database.engine
    event.listen(engine, "begin", began)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        in_request.set(True)  # this task's context, copied into its worker threads
        result = await step_up(kyc_core, kyc_org, customer_id)
        in_request.set(False)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", began)
    assert result.allow
    assert [len(t) for t in transactions] == [7, 7], transactions


async def test_a_refusal_from_liveness_is_an_attempt_not_a_decision(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    kyc_fakes.liveness.refusal = PermissionDenied(
        "the bundle signature does not verify", "BUNDLE_SIGNATURE_INVALID"
    )
    with pytest.raises(DomainError) as refused:
        await step_up(kyc_core, kyc_org, customer_id)
    assert refused.value.reason == "BUNDLE_SIGNATURE_INVALID"
    await assert_refused(kyc_core, customer_id, "BUNDLE_SIGNATURE_INVALID", verifications=1)


PROTOCOL_REFUSALS = {
    "bad signature": PermissionDenied(
        "the bundle signature does not verify", "BUNDLE_SIGNATURE_INVALID"
    ),
    "replayed nonce": AlreadyExists("the nonce was already used", "NONCE_REPLAYED"),
    "expired challenge": FailedPrecondition("the challenge has expired", "CHALLENGE_EXPIRED"),
    "spent challenge": FailedPrecondition(
        "the challenge was already used", "CHALLENGE_ALREADY_USED"
    ),
    "unknown device": NotFound("no such device for this customer", "DEVICE_NOT_FOUND"),
}


@pytest.mark.parametrize("refusal", PROTOCOL_REFUSALS.values(), ids=PROTOCOL_REFUSALS.keys())
async def test_a_protocol_refusal_costs_no_model_work(
    kyc_core, kyc_fakes, kyc_org, refusal
) -> None:
    """The protocol checks (liveness.CheckAttestation) come before any model:
    a bad request is refused without capture-quality, PAD or embedding."""
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    kyc_fakes.liveness.refusal = refusal
    with pytest.raises(DomainError) as refused:
        await step_up(kyc_core, kyc_org, customer_id)
    assert (refused.value.code, refused.value.reason) == (refusal.code, refusal.reason)
    assert kyc_fakes.liveness.attestation_checks == [(customer_id, "step_up", "chl_1")]
    assert kyc_fakes.quality.face_calls == []
    assert kyc_fakes.liveness.checks == []
    assert kyc_fakes.embedder.embedded == []
    assert kyc_fakes.matcher.verified == []
    await assert_refused(kyc_core, customer_id, refusal.reason, verifications=1)


async def test_a_good_request_is_prechecked_once_then_assessed(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    result = await step_up(kyc_core, kyc_org, customer_id)
    assert result.allow is True
    assert kyc_fakes.liveness.attestation_checks == [(customer_id, "step_up", "chl_1")]
    assert kyc_fakes.quality.face_calls == [("selfie", 2)]
    assert kyc_fakes.liveness.checks == [(customer_id, "step_up", "chl_1")]
    assert kyc_fakes.embedder.embedded == ["crops", "witness"]
    assert kyc_fakes.matcher.verified == [("frames", None), (customer_id, None)]
    # One ListEnrollments: the precheck's list also serves the promotion policy.
    assert kyc_fakes.matcher.listed == [customer_id]


async def test_the_organisations_threshold_reaches_the_matcher(kyc_core, kyc_fakes) -> None:
    strict_org = await new_org(kyc_core, match_threshold=0.9)
    customer_id = await new_customer(kyc_core, kyc_fakes, strict_org)
    kyc_fakes.matcher.score = 0.8  # a match at the default threshold, not at 0.9
    result = await step_up(kyc_core, strict_org, customer_id)
    # The frames of one capture are compared at the deployment's bar, not the organisation's.
    assert kyc_fakes.matcher.verified == [("frames", None), (customer_id, 0.9)]
    assert result.allow is False
    assert [r.code for r in result.reasons] == ["FACE_MISMATCH"]
    assert result.match is not None and result.match.threshold == 0.9


async def test_an_erased_customer_is_refused_without_an_attempt(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    await kyc_core.erasure.erase(kyc_org, customer_id, "data_subject_request")
    with pytest.raises(DomainError) as refused:
        await step_up(kyc_core, kyc_org, customer_id)
    assert refused.value.reason == "CUSTOMER_ERASED"
    assert await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="step_up") == []


async def test_another_organisations_customer_is_not_found(kyc_core, kyc_fakes, kyc_org) -> None:
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    other_org = await new_org(kyc_core)
    with pytest.raises(DomainError) as refused:
        await step_up(kyc_core, other_org, customer_id)
    assert refused.value.reason == "CUSTOMER_NOT_FOUND"
    assert await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="step_up") == []
    assert kyc_fakes.liveness.checks == []


BAD_INPUT = {
    "no frames": ({"bundle": replace(capture_bundle(), frames=())}, "bundle.frames"),
    "too many frames": ({"bundle": capture_bundle(frames=17)}, "bundle.frames"),
    "no challenge": ({"challenge_id": ""}, "challenge_id"),
    "short nonce": ({"bundle": capture_bundle(nonce="short")}, "bundle.attestation.nonce"),
    "long action": ({"action": "x" * 65}, "action"),
    # `action` is chained into the audit log, which no erasure removes: a code.
    "a name as action": ({"action": "transfer to Siti Rahayu"}, "action"),
    "a phone number as action": ({"action": "topup-0812_3456_7890"}, "action"),
    # A flash frame before the first colour would be taken as the first colour's.
    "flash frame before the flash": (
        {"bundle": replace(capture_bundle(frames=3), offsets_ms=(-200, 0, -1))},
        "bundle.frames[2].offset_ms",
    ),
}


@pytest.mark.parametrize(("changes", "field"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
async def test_bad_input_is_refused_before_anything_is_written(
    kyc_core, kyc_fakes, kyc_org, changes, field
) -> None:
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    with pytest.raises(DomainError) as refused:
        await step_up(kyc_core, kyc_org, customer_id, **changes)
    assert (refused.value.code, refused.value.metadata.get("field")) == ("INVALID_ARGUMENT", field)
    assert await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="step_up") == []
    assert kyc_fakes.liveness.checks == []


async def test_a_baseline_taken_before_the_flash_has_a_negative_offset(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """What the SDKs send: the baseline before the first colour (negative),
    the flash frames from 0."""
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    bundle = replace(capture_bundle(frames=3), offsets_ms=(-200, 0, 400))
    result = await step_up(kyc_core, kyc_org, customer_id, bundle=bundle)
    assert result.allow is True


def test_the_fake_face_assessment_is_a_good_one() -> None:
    # The table's "allow" row depends on it.
    assert GOOD_FACE.passed and GOOD_FACE.crops is not None


@contextlib.contextmanager
def calling_as(org_id: str, actor: str) -> Iterator[None]:
    token = context.bind(context.CallContext(request_id="r", org_id=org_id, actor=actor))
    try:
        yield
    finally:
        context.reset(token)


@pytest.mark.parametrize("enrolled", [True, False], ids=["enrolled", "not enrolled"])
async def test_an_sdk_session_may_not_send_a_reference_image(
    kyc_core, kyc_fakes, kyc_org, enrolled
) -> None:
    """Probe5 finding 1: the customer's browser (a capture SDK session) sent
    its own face as the reference and passed step-up, with or without an
    enrolment. It is refused before anything is written or any model runs."""
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org, enrolled)
    with calling_as(kyc_org, "sdk_session:ses_1"), pytest.raises(DomainError) as refused:
        await step_up(kyc_core, kyc_org, customer_id, **PARTNER_IMAGE)
    assert (refused.value.code, refused.value.reason) == (
        "PERMISSION_DENIED",
        "REFERENCE_IMAGE_FORBIDDEN",
    )
    assert refused.value.metadata["field"] == "reference_image"
    assert kyc_fakes.liveness.attestation_checks == [] and kyc_fakes.quality.face_calls == []
    assert kyc_fakes.embedder.embedded == [] and kyc_fakes.matcher.verified == []
    assert await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="step_up") == []
    assert await rows(kyc_core, models.AuditOutbox, action="stepup.decide") == []
    # Only the customer's NIK_FORMAT verification.
    assert len(await rows(kyc_core, models.Verification, customer_id=customer_id)) == 1


async def test_an_sdk_session_steps_up_against_the_enrolled_reference(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """Without a reference image an SDK session is matched against the
    enrolled reference; the partner's backend may still send an image."""
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    with calling_as(kyc_org, "sdk_session:ses_1"):
        browser = await step_up(kyc_core, kyc_org, customer_id)
    assert (browser.allow, browser.reference_source) == (True, "enrolled")
    with calling_as(kyc_org, "api_key:key_1"):
        backend = await step_up(
            kyc_core, kyc_org, customer_id, bundle=capture_bundle(), **PARTNER_IMAGE
        )
    assert (backend.allow, backend.reference_source) == (True, "partner_image")


async def test_a_replay_answers_only_the_reference_it_was_decided_against(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """Probe5 finding 2: a bundle decided against one reference, sent again
    with another (the enrolled one, another image), was answered with the
    original `allow`. It is refused (a refused attempt, audited); the same
    reference still gets the original answer; nothing reaches the mesh."""
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    bundle = capture_bundle()
    first = await step_up(kyc_core, kyc_org, customer_id, bundle=bundle, **PARTNER_IMAGE)
    assert (first.allow, first.replayed, first.reference_source) == (True, False, "partner_image")

    for other in (b"", b"another partner reference image"):
        with pytest.raises(DomainError) as refused:
            await step_up(kyc_core, kyc_org, customer_id, bundle=bundle, reference_image=other)
        assert (refused.value.code, refused.value.reason) == (
            "ALREADY_EXISTS",
            "STEP_UP_REPLAYED_FOR_OTHER_REFERENCE",
        )
    again = await step_up(kyc_core, kyc_org, customer_id, bundle=bundle, **PARTNER_IMAGE)
    assert (again.allow, again.replayed, again.reference_source) == (True, True, "partner_image")
    assert again.verification_id == first.verification_id
    # The first request's capture and reference only.
    assert len(kyc_fakes.liveness.checks) == 1
    assert kyc_fakes.quality.face_calls == [("selfie", 2), ("reference", 1)]
    attempts = await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="step_up")
    refused_codes = [a.reasons[0]["code"] for a in attempts if a.outcome == "refused"]
    assert refused_codes == ["STEP_UP_REPLAYED_FOR_OTHER_REFERENCE"] * 2
    denied = await rows(kyc_core, models.AuditOutbox, action="stepup.decide", outcome="denied")
    assert [e.details["reason"] for e in denied] == ["STEP_UP_REPLAYED_FOR_OTHER_REFERENCE"] * 2

    # Decided against the enrolled reference: not answered for a partner image.
    enrolled = capture_bundle()
    decided = await step_up(kyc_core, kyc_org, customer_id, bundle=enrolled)
    assert decided.reference_source == "enrolled"
    with pytest.raises(DomainError) as refused:
        await step_up(kyc_core, kyc_org, customer_id, bundle=enrolled, **PARTNER_IMAGE)
    assert refused.value.reason == "STEP_UP_REPLAYED_FOR_OTHER_REFERENCE"
    assert (await step_up(kyc_core, kyc_org, customer_id, bundle=enrolled)).replayed is True


async def test_the_stepup_webhook_names_the_reference(kyc_core, kyc_fakes) -> None:
    """Probe5 finding 1: nothing told the partner a step-up was decided
    against a caller's image rather than the enrolled reference."""
    org_id = await new_org(kyc_core)
    hook = await kyc_core.webhooks.create(
        org_id, "https://hooks.example.com/identity", ["stepup.decided"], ""
    )
    customer_id = await new_customer(kyc_core, kyc_fakes, org_id)
    enrolled = await step_up(kyc_core, org_id, customer_id)
    partner = await step_up(kyc_core, org_id, customer_id, bundle=capture_bundle(), **PARTNER_IMAGE)
    found = await rows(kyc_core, models.WebhookDelivery, webhook_id=hook.webhook.webhook_id)
    sent = {d["data"]["verification_id"]: d["data"] for d in (json.loads(f.body) for f in found)}
    assert sent == {
        result.verification_id: {
            "customer_id": customer_id,
            "verification_id": result.verification_id,
            "kind": "step_up",
            "outcome": "passed",
            "reference_source": source,
        }
        for result, source in ((enrolled, "enrolled"), (partner, "partner_image"))
    }


async def test_a_reference_image_with_two_faces_is_refused(
    kyc_core, kyc_fakes, kyc_org, monkeypatch
) -> None:
    """Probe5 finding 11: a partner reference showing two people was matched
    against whichever face the detector ranked first. It is refused, naming
    the field, as a refused, audited attempt (no decision)."""
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    crowded = replace(GOOD_FACE, passed=False, reasons=(Reason("MULTIPLE_FACES", "two people"),))
    assess = kyc_fakes.quality.assess_face

    async def crowded_reference(frames, kind: str):
        face = await assess(frames, kind)
        return crowded if kind == "reference" else face

    monkeypatch.setattr(kyc_fakes.quality, "assess_face", crowded_reference)
    with pytest.raises(DomainError) as refused:
        await step_up(kyc_core, kyc_org, customer_id, **PARTNER_IMAGE)
    assert (refused.value.code, refused.value.reason) == (
        "INVALID_ARGUMENT",
        "IMAGE_MULTIPLE_FACES",
    )
    assert refused.value.metadata["field"] == "reference_image"
    assert ("reference", None) not in kyc_fakes.matcher.verified
    await assert_refused(kyc_core, customer_id, "IMAGE_MULTIPLE_FACES", verifications=1)


async def test_a_refused_reference_image_leaves_the_capture_usable(
    kyc_core, kyc_fakes, kyc_org, monkeypatch
) -> None:
    """Re-probe R5-3: a step-up refused for the partner's reference image (no
    face in it) had already spent the bundle's nonce and challenge, so the
    customer had to capture again. The reference is judged before liveness
    runs: the refusal names the field, and the same bundle with a usable
    reference is then decided."""
    customer_id = await new_customer(kyc_core, kyc_fakes, kyc_org)
    bundle = capture_bundle()
    assess_face = kyc_fakes.quality.assess_face

    async def no_face_in_the_reference(frames, kind):
        return NO_FACE if kind == "reference" else await assess_face(frames, kind)

    monkeypatch.setattr(kyc_fakes.quality, "assess_face", no_face_in_the_reference)
    with pytest.raises(FailedPrecondition) as refused:
        await step_up(kyc_core, kyc_org, customer_id, bundle=bundle, **PARTNER_IMAGE)
    assert refused.value.reason == "FACE_NOT_FOUND"
    assert refused.value.metadata["field"] == "reference_image"
    assert kyc_fakes.liveness.checks == []
    monkeypatch.undo()

    decided = await step_up(kyc_core, kyc_org, customer_id, bundle=bundle, **PARTNER_IMAGE)
    assert (decided.allow, decided.replayed, decided.reference_source) == (
        True,
        False,
        "partner_image",
    )
    attempts = await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="step_up")
    assert sorted(a.outcome for a in attempts) == ["passed", "refused"]
