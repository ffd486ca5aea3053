"""The other capture flows through the shared pipeline, with fake ports on a
SQLite database migrated once for the module: face liveness and match (the
match reopening the sealed liveness bundle through the bundle codec), KTP
capture and its replay, and the Dukcapil verdict on a controlled clock."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.kyc_tier.v1 import resources_pb2
from identity_runtime import signing
from identity_runtime.errors import DomainError
from services.kyc_tier import models
from services.kyc_tier.customers import CustomerInput
from services.kyc_tier.flows.dukcapil import DukcapilRequest, DukcapilVerdict
from services.kyc_tier.flows.face import LivenessRequest, MatchRequest
from services.kyc_tier.flows.ktp import KtpCaptureRequest
from services.kyc_tier.mapping.captures import bundle_input
from services.kyc_tier.ports import (
    KtpAssessment,
    KtpField,
    LivenessDecision,
    Reason,
    TamperSignal,
)
from tests.support import unique_name
from tests.support.kyc_fakes import Gate, capture_bundle, new_org, rows

VALID_NIK = "3273024107950003"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOOD_CARD = KtpAssessment(
    passed=True,
    reasons=(),
    fields={"nik": KtpField(VALID_NIK, 0.98), "name": KtpField("SITI  RAHAYU", 0.91)},
    nik_valid=True,
    tamper=(),
    portrait_found=True,
    ocr_model="fake-ocr",
    portrait_crops="portrait",
)


@pytest.fixture(scope="module")
def kyc_clock():
    return lambda: NOW


async def new_customer(kyc_core, org_id: str, nik: str = VALID_NIK) -> str:
    created = await kyc_core.customers.create(
        org_id, CustomerInput(external_id=unique_name("ext"), nik=nik)
    )
    return created.customer.customer_id


def proto_bundle(frames: list[bytes]) -> resources_pb2.CaptureBundle:
    """A bundle as a request carries it: what is sealed and reopened."""
    bundle = resources_pb2.CaptureBundle(
        frames=[
            resources_pb2.CapturedFrame(
                image=types_pb2.Image(data=frame), offset_ms=i * 400, baseline=i == 0
            )
            for i, frame in enumerate(frames)
        ],
        attestation=types_pb2.BundleAttestation(
            device_id="device-1", nonce=unique_name("nonce"), signature=b"signed"
        ),
    )
    bundle.attestation.captured_at.FromDatetime(NOW)
    return bundle


async def test_liveness_enrolls_the_first_reference_and_match_reopens_its_capture(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    customer_id = await new_customer(kyc_core, kyc_org)
    frames = [b"ambient", b"red", b"green"]
    live = await kyc_core.face.check_liveness(
        kyc_org, LivenessRequest(customer_id, "chl_1", bundle_input(proto_bundle(frames)))
    )
    verification = live.recorded.verification
    assert verification.outcome == "passed"
    assert live.assessment.enrollment_id
    assert [e.source for e in kyc_fakes.matcher.enrollments[customer_id]] == ["onboarding_selfie"]
    (sealed,) = await rows(
        kyc_core, models.CaptureBundle, verification_id=verification.verification_id
    )
    assert sealed.retention_class == "onboarding"

    # A second live capture does not replace the reference.
    again = await kyc_core.face.check_liveness(
        kyc_org, LivenessRequest(customer_id, "chl_2", bundle_input(proto_bundle(frames)))
    )
    assert again.assessment.enrollment_id == ""

    kyc_fakes.quality.face_calls.clear()
    match = await kyc_core.face.match(
        kyc_org, MatchRequest(customer_id, liveness_verification_id=verification.verification_id)
    )
    # The probe came from the sealed bundle's three frames, opened and decoded.
    assert kyc_fakes.quality.face_calls == [("selfie", 3)]
    assert match.recorded.verification.outcome == "passed"
    assert match.recorded.verification.details["against_enrolled_live"] is True
    (audit,) = await rows(
        kyc_core,
        models.AuditOutbox,
        action="face.match",
        subject=f"customer:{customer_id}",
    )
    assert audit.details["verification_id"] == match.recorded.verification.verification_id
    # Opening the sealed frames was logged: ids only.
    (read,) = await rows(
        kyc_core,
        models.AuditOutbox,
        action="capture_bundle.read",
        subject=f"customer:{customer_id}",
    )
    assert read.subject == f"customer:{customer_id}"
    assert read.details == {
        "bundle_id": sealed.bundle_id,
        "verification_id": verification.verification_id,
    }


async def test_a_selfie_with_another_person_on_the_flash_frames_is_not_live(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """The flash proves only that the face which answered it is live: when it
    is not the baseline's person, nothing is enrolled, and a replay says so too."""
    customer_id = await new_customer(kyc_core, kyc_org)
    kyc_fakes.matcher.frames_score = 0.12
    request = LivenessRequest(
        customer_id, "chl_1", bundle_input(proto_bundle([b"ambient", b"red", b"green"]))
    )
    for replayed in (False, True):
        result = await kyc_core.face.check_liveness(kyc_org, request)
        verification = result.recorded.verification
        assert (result.replayed, verification.outcome) == (replayed, "failed")
        assert result.assessment.liveness.live is False
        assert [r.code for r in verification.reasons] == ["FACE_CHANGED_BETWEEN_FRAMES"]
        assert verification.scores["frames_match"] == pytest.approx(0.12)
        assert result.assessment.enrollment_id == ""
    assert kyc_fakes.matcher.verified == [("frames", None)]
    assert customer_id not in kyc_fakes.matcher.enrollments


def with_offsets(bundle: resources_pb2.CaptureBundle, *offsets: int) -> resources_pb2.CaptureBundle:
    for frame, offset in zip(bundle.frames, offsets, strict=True):
        frame.offset_ms = offset
    return bundle


async def test_a_liveness_baseline_may_precede_the_flash_but_a_flash_frame_may_not(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """The baseline is taken before the first colour (a negative offset); a
    flash frame with one is a 400 naming the frame, before anything is
    written (like every malformed bundle) and before any model call. A frame
    taken after the flash is not refused: the challenge's length is
    liveness's, whose flash check leaves such a frame out."""
    customer_id = await new_customer(kyc_core, kyc_org)
    frames = [b"ambient", b"red", b"green", b"after"]
    after_the_flash = bundle_input(with_offsets(proto_bundle(frames), -200, 0, 400, 60_000))
    live = await kyc_core.face.check_liveness(
        kyc_org, LivenessRequest(customer_id, "chl_1", after_the_flash)
    )
    assert live.recorded.verification.outcome == "passed"
    checks_before = len(kyc_fakes.liveness.checks)

    other = await new_customer(kyc_core, kyc_org)
    early = bundle_input(with_offsets(proto_bundle(frames), -200, -1, 400, 800))
    with pytest.raises(DomainError) as refused:
        await kyc_core.face.check_liveness(kyc_org, LivenessRequest(other, "chl_2", early))
    assert (refused.value.reason, refused.value.metadata) == (
        "INVALID_FIELD",
        {"field": "bundle.frames[1].offset_ms"},
    )
    assert await rows(kyc_core, models.Attempt, customer_id=other, kind="face_liveness") == []
    subject = f"customer:{other}"
    assert await rows(kyc_core, models.AuditOutbox, subject=subject, action="face.liveness") == []
    assert len(kyc_fakes.liveness.checks) == checks_before


async def test_a_ktp_flash_frame_before_the_flash_is_refused(kyc_core, kyc_fakes, kyc_org) -> None:
    customer_id = await new_customer(kyc_core, kyc_org)
    kyc_fakes.quality.ktp = GOOD_CARD
    card = bundle_input(with_offsets(proto_bundle([b"card", b"red", b"green"]), -300, 0, -5))
    with pytest.raises(DomainError) as refused:
        await kyc_core.ktp.capture(kyc_org, KtpCaptureRequest(customer_id, "chl_k", card, {}))
    assert (refused.value.reason, refused.value.metadata) == (
        "INVALID_FIELD",
        {"field": "bundle.frames[2].offset_ms"},
    )
    assert await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="ktp_capture") == []
    assert kyc_fakes.quality.ktp_calls == []


async def test_a_match_on_a_capture_that_is_not_a_passed_liveness_is_refused(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    customer_id = await new_customer(kyc_core, kyc_org)
    kyc_fakes.matcher.enroll_reference(customer_id)
    with pytest.raises(DomainError) as refused:
        await kyc_core.face.match(
            kyc_org, MatchRequest(customer_id, liveness_verification_id="ver_x")
        )
    assert refused.value.reason == "VERIFICATION_NOT_FOUND"
    (attempt,) = await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="face_match")
    assert (attempt.outcome, attempt.reasons[0]["code"]) == ("refused", "VERIFICATION_NOT_FOUND")

    with pytest.raises(DomainError) as no_probe:
        await kyc_core.face.match(kyc_org, MatchRequest(customer_id))
    assert no_probe.value.metadata["field"] == "probe_image"


@pytest.mark.parametrize("crowded", ["probe_image", "reference_image"])
async def test_a_match_image_with_two_faces_is_refused_naming_it(
    kyc_core, kyc_fakes, kyc_org, crowded, monkeypatch
) -> None:
    """Probe5 finding 11: an image with two people was matched on whichever
    face the detector ranked first. Refused, naming the image."""
    customer_id = await new_customer(kyc_core, kyc_org)
    two_people = replace(
        kyc_fakes.quality.face, passed=False, reasons=(Reason("MULTIPLE_FACES", "two people"),)
    )
    images = {"probe_image": b"probe image", "reference_image": b"reference image"}
    faces = iter([two_people] if crowded == "probe_image" else [kyc_fakes.quality.face, two_people])
    assess = kyc_fakes.quality.assess_face

    async def one_crowded_image(frames, kind: str):
        await assess(frames, kind)
        return next(faces, kyc_fakes.quality.face)

    monkeypatch.setattr(kyc_fakes.quality, "assess_face", one_crowded_image)
    with pytest.raises(DomainError) as refused:
        await kyc_core.face.match(kyc_org, MatchRequest(customer_id, **images))
    assert (refused.value.code, refused.value.reason) == (
        "INVALID_ARGUMENT",
        "IMAGE_MULTIPLE_FACES",
    )
    assert refused.value.metadata["field"] == crowded
    (attempt,) = await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="face_match")
    assert (attempt.outcome, attempt.reasons[0]["code"]) == ("refused", "IMAGE_MULTIPLE_FACES")
    assert kyc_fakes.matcher.verified == []


async def test_ktp_capture_gives_the_nik_and_standard_and_replays_the_same_bundle(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    customer_id = (
        await kyc_core.customers.create(kyc_org, CustomerInput(external_id=unique_name("ext")))
    ).customer.customer_id
    kyc_fakes.quality.ktp = GOOD_CARD
    bundle = capture_bundle(frames=1)
    request = KtpCaptureRequest(
        customer_id, "chl_k", bundle, {"nik": VALID_NIK, "name": "Siti Rahayu"}
    )
    first = await kyc_core.ktp.capture(kyc_org, request)
    assert first.verification.outcome == "passed"
    assert first.tier == "standard"  # the card's NIK (basic), and the card itself
    assert first.enrollment_id
    assert {c.name: c.matches_submitted for c in first.field_checks} == {"name": True, "nik": True}
    assert (
        first.verification.input_hashes["card_frame"]
        == hashlib.sha256(bundle.frames[0]).hexdigest()
    )
    events = await rows(kyc_core, models.TierEvent, customer_id=customer_id)
    # The NIK and the card arrive in one transaction: one tier event.
    assert [(e.from_tier, e.to_tier) for e in events] == [("none", "standard")]

    again = await kyc_core.ktp.capture(kyc_org, request)
    assert again.replayed is True
    assert again.verification.verification_id == first.verification.verification_id
    assert again.field_checks == first.field_checks
    assert len(kyc_fakes.liveness.checks) == 1

    other_frames = replace(bundle, frames=(b"another card",))
    with pytest.raises(DomainError) as refused:
        await kyc_core.ktp.capture(kyc_org, replace(request, bundle=other_frames))
    assert refused.value.reason == "NONCE_REPLAYED"


async def test_a_second_card_while_the_first_is_checked_is_refused_before_any_model_call(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """Like a second selfie (tests/integration/test_kyc_held_selfie.py): two
    KTP captures of one customer at once would both pass the pending-review
    check; the second is refused (ABORTED / CAPTURE_IN_PROGRESS) while the
    first's card is checked."""
    customer_id = await new_customer(kyc_core, kyc_org)
    kyc_fakes.quality.ktp = GOOD_CARD
    gate = kyc_fakes.quality.gate = Gate()

    def card() -> KtpCaptureRequest:
        return KtpCaptureRequest(customer_id, "chl_k", capture_bundle(frames=1), {})

    running = asyncio.create_task(kyc_core.ktp.capture(kyc_org, card()))
    try:
        await gate.entered.wait()
        with pytest.raises(DomainError) as refused:
            await kyc_core.ktp.capture(kyc_org, card())
    finally:
        gate.release.set()
        first = await running
    assert (refused.value.code, refused.value.reason) == ("ABORTED", "CAPTURE_IN_PROGRESS")
    assert first.verification.outcome == "passed"
    assert kyc_fakes.quality.ktp_calls == [1]
    attempts = await rows(kyc_core, models.Attempt, customer_id=customer_id, kind="ktp_capture")
    assert sorted(a.outcome for a in attempts) == ["passed", "refused"]


async def test_a_failed_card_is_a_failed_verification_without_enrollment(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    customer_id = await new_customer(kyc_core, kyc_org)
    kyc_fakes.quality.ktp = replace(
        GOOD_CARD,
        passed=False,
        reasons=(Reason("NIK_MISMATCH", "the card's NIK is not the customer's"),),
        tamper=(TamperSignal("SCREEN_REPLAY", 0.9, True),),
    )
    result = await kyc_core.ktp.capture(
        kyc_org, KtpCaptureRequest(customer_id, "chl_k", capture_bundle(frames=1), {})
    )
    assert result.verification.outcome == "failed"
    assert [r.code for r in result.verification.reasons] == ["NIK_MISMATCH", "SCREEN_REPLAY"]
    assert result.verification.scores == {"tamper_screen_replay": 0.9}
    assert result.tier == "basic"
    assert result.enrollment_id == ""
    assert kyc_fakes.embedder.embedded == []


async def test_a_good_card_that_does_not_answer_the_flash_fails_without_enrollment(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """A readable card shown on a screen: capture-quality passes it, liveness
    finds no answer to the flash; the capture fails with liveness's reason."""
    customer_id = await new_customer(kyc_core, kyc_org)
    kyc_fakes.quality.ktp = GOOD_CARD
    kyc_fakes.liveness.decision = LivenessDecision(
        live=False,
        pad_score=0.0,
        flash_score=0.0,
        reasons=(Reason("CARD_FLASH_RESPONSE_MISSING", "the card's colour barely changed"),),
        decision_basis="card-flash",
    )
    result = await kyc_core.ktp.capture(
        kyc_org, KtpCaptureRequest(customer_id, "chl_k", capture_bundle(frames=5), {})
    )
    assert result.verification.outcome == "failed"
    assert [r.code for r in result.verification.reasons] == ["CARD_FLASH_RESPONSE_MISSING"]
    assert result.verification.scores == {"flash": 0.0}
    assert result.tier == "basic"
    assert result.enrollment_id == ""
    assert kyc_fakes.embedder.embedded == []
    assert kyc_fakes.liveness.checks[-1][1] == "ktp_capture"


def verdict(**changes) -> DukcapilVerdict:
    base = DukcapilVerdict(
        field_matches={"nik": True, "full_name": True, "birth_date": True},
        face_score=0.0,
        reference="DKC-1",
        verified_at=NOW - timedelta(days=1),
    )
    return replace(base, **changes)


async def test_a_dukcapil_verdict_within_30_days_reaches_standard(kyc_core, kyc_org) -> None:
    customer_id = await new_customer(kyc_core, kyc_org)
    result = await kyc_core.dukcapil.submit(kyc_org, DukcapilRequest(customer_id, verdict()))
    assert result.recorded.tier == "standard"
    assert result.assessment.signed is False
    stale = verdict(verified_at=NOW - timedelta(days=31))
    with pytest.raises(DomainError) as refused:
        await kyc_core.dukcapil.submit(kyc_org, DukcapilRequest(customer_id, stale))
    assert refused.value.metadata["field"] == "verdict.verified_at"
    for score in (-5.0, 100.5, 1e20, float("nan"), float("inf")):
        out_of_range = verdict(face_score=score)
        with pytest.raises(DomainError) as refused:
            await kyc_core.dukcapil.submit(kyc_org, DukcapilRequest(customer_id, out_of_range))
        assert refused.value.metadata["field"] == "verdict.face_score"
    scored = verdict(face_score=87.5, reference="DKC-2")
    kept = await kyc_core.dukcapil.submit(kyc_org, DukcapilRequest(customer_id, scored))
    assert kept.recorded.verification.scores == {"face_score": 87.5}
    mismatch = verdict(field_matches={"nik": True, "full_name": False})
    failed = await kyc_core.dukcapil.submit(kyc_org, DukcapilRequest(customer_id, mismatch))
    assert failed.recorded.verification.outcome == "failed"
    assert [r.code for r in failed.recorded.verification.reasons] == ["DUKCAPIL_FULL_NAME_MISMATCH"]


async def test_a_dukcapil_verdict_must_carry_the_organisations_signature(kyc_core) -> None:
    org_id = await new_org(kyc_core)
    secret = b"s" * 32

    def store_secret(session) -> None:
        kyc_core.vault.store_org_secret(session, session.get(models.Org, org_id), secret)

    await kyc_core.database.run(store_secret)
    customer_id = await new_customer(kyc_core, org_id)
    with pytest.raises(DomainError) as refused:
        await kyc_core.dukcapil.submit(org_id, DukcapilRequest(customer_id, verdict(), "sha256=00"))
    assert refused.value.reason == "EVIDENCE_SIGNATURE_INVALID"
    document = signing.canonical_json(
        {
            "customer_id": customer_id,
            "field_matches": {"birth_date": True, "full_name": True, "nik": True},
            "face_score": 0.0,
            "reference": "DKC-1",
            "verified_at": (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    signed = DukcapilRequest(customer_id, verdict(), signing.sign(secret, document))
    result = await kyc_core.dukcapil.submit(org_id, signed)
    assert result.assessment.signed is True
    assert result.recorded.verification.input_hashes == {
        "verdict": hashlib.sha256(document).hexdigest()
    }


async def test_an_unconfirmed_card_nik_is_not_kept_and_the_reply_says_what_to_do(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    # A customer created without a NIK, and no NIK from the partner's OCR:
    # capture-quality could not confirm the card's NIK (issue 20), so kyc-tier
    # must not keep it, although it is structurally valid.
    customer_id = (
        await kyc_core.customers.create(kyc_org, CustomerInput(external_id=unique_name("ext")))
    ).customer.customer_id
    kyc_fakes.quality.ktp = replace(
        GOOD_CARD,
        passed=False,
        reasons=(
            Reason("CARD_HIGHLIGHT_ON_TEXT", "a highlight covers the nik row; retake"),
            Reason(
                "NIK_UNCONFIRMED",
                "the NIK read from the card is not confirmed, so it is not kept: retake "
                "the photo, or send the customer's NIK as submitted_nik",
            ),
        ),
    )
    result = await kyc_core.ktp.capture(
        kyc_org, KtpCaptureRequest(customer_id, "chl_k", capture_bundle(frames=1), {})
    )
    assert result.verification.outcome == "failed"
    reasons = {r.code: r.message for r in result.verification.reasons}
    assert "submitted_nik" in reasons["NIK_UNCONFIRMED"]
    assert VALID_NIK not in " ".join(reasons.values())
    (customer,) = await rows(kyc_core, models.Customer, customer_id=customer_id)
    assert not customer.nik_sealed
    assert result.tier == "none"
    assert kyc_fakes.embedder.embedded == []


async def test_a_match_refuses_a_capture_past_its_retention_period(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """Reads refuse frames past their period even before the sweeper removes them."""
    from sqlalchemy import update

    from identity_store.retention import period

    customer_id = await new_customer(kyc_core, kyc_org)
    live = await kyc_core.face.check_liveness(
        kyc_org, LivenessRequest(customer_id, "chl_r", bundle_input(proto_bundle([b"a", b"b"])))
    )
    verification_id = live.recorded.verification.verification_id
    with kyc_core.database.transaction() as session:
        session.execute(
            update(models.CaptureBundle)
            .where(models.CaptureBundle.verification_id == verification_id)
            .values(created_at=datetime.now(UTC) - period("onboarding_frames") - timedelta(days=1))
        )
    with pytest.raises(DomainError) as refused:
        await kyc_core.face.match(
            kyc_org, MatchRequest(customer_id, liveness_verification_id=verification_id)
        )
    assert refused.value.reason == "VERIFICATION_NOT_FOUND"
    assert "no longer retained" in str(refused.value)


async def test_ktp_fields_in_any_accepted_format_match_and_every_score_is_kept(
    kyc_core, kyc_fakes, kyc_org
) -> None:
    """ISO birth date and gender "male" match the card's DD-MM-YYYY and LAKI-LAKI;
    the issue place the partner did not send is not compared; both scores stored."""
    customer_id = (
        await kyc_core.customers.create(kyc_org, CustomerInput(external_id=unique_name("ext")))
    ).customer.customer_id
    card_fields = dict(GOOD_CARD.fields)
    card_fields |= {
        "birth_date": KtpField("01-07-1995", 0.95),
        "gender": KtpField("LAKI-LAKI", 0.9),
        "issue_place": KtpField("BANDUNG", 0.9),
        "occupation": KtpField("KARYAWAN SWASTA", 0.9),
    }
    mismatch = "FIELD_MISMATCH_SUBMITTED"
    kyc_fakes.quality.ktp = replace(
        GOOD_CARD,
        fields=card_fields,
        tamper=(TamperSignal(mismatch, 0.3, False), TamperSignal(mismatch, 0.6, False)),
    )
    submitted = {
        "nik": VALID_NIK,
        "name": "siti rahayu",
        "birth_date": "1995-07-01",
        "gender": "male",
        "occupation": "PETANI",
        "issue_place": "",
    }
    request = KtpCaptureRequest(customer_id, "chl_k2", capture_bundle(frames=1), submitted)
    result = await kyc_core.ktp.capture(kyc_org, request)
    checks = {c.name: (c.comparison, c.matches_submitted) for c in result.field_checks}
    assert checks == {
        "birth_date": ("match", True),
        "gender": ("match", True),
        "issue_place": ("not_submitted", False),
        "name": ("match", True),
        "nik": ("match", True),
        "occupation": ("mismatch", False),
    }
    scores = result.verification.scores
    assert scores["field_birth_date"] == 1.0 and scores["field_gender"] == 1.0
    assert 0 <= scores["field_occupation"] < 0.85
    assert "field_issue_place" not in scores
    # Two signals with one code: both scores kept.
    assert (
        scores["tamper_field_mismatch_submitted"],
        scores["tamper_field_mismatch_submitted_2"],
    ) == (
        0.3,
        0.6,
    )
