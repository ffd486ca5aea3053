"""KTP capture: the identity card, from basic to standard.

    POST /api/identity/document/ktp/challenge   liveness.IssueChallenge
    POST /api/identity/document/ktp/capture
        capture-quality.CheckKtp (card, OCR, NIK cross-checks, tamper; the
            card's colour on each flash frame)
        -> liveness.CheckLiveness (device signature, nonce, challenge; the
            card's answer to the flash: a screen barely answers)
        -> embedding.Embed (card portrait) -> matching.Enroll ktp_extract,
           searching the organisation's gallery for the same face

The capture runs through the capture pipeline, which makes it idempotent
(`replays.py`): the same bundle sent again (same nonce, digest and customer,
within 24 h) returns the original verification with `replayed`; a nonce seen
with anything else is refused. While a held card (its portrait matched
another customer's face) awaits an analyst, a new card of that customer is
refused before any model call (FAILED_PRECONDITION / REVIEW_PENDING), as a
new selfie is while a held selfie waits; a replay of the held card still
answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session

from identity_ktp import compare
from identity_ktp.thresholds import Thresholds
from services.kyc_tier import bundles, customers, models, records, tiers
from services.kyc_tier.flows import biometrics, reviews
from services.kyc_tier.flows.capture import ChallengedCapture, check_liveness
from services.kyc_tier.flows.devices import Challenges
from services.kyc_tier.flows.pipeline import CapturePipeline, Decision, Step, Subject
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import (
    CaptureQuality,
    Challenge,
    Clock,
    Duplicate,
    Embedder,
    Enrolled,
    KtpAssessment,
    Liveness,
    LivenessDecision,
    Matcher,
    Reason,
)

FIELD_SIMILARITY_MIN = Thresholds.field_similarity_min
# Liveness's decision basis when it judged the card's answer to the flash.
CARD_FLASH = "card-flash"
STEP = Step(tiers.KTP_CAPTURE, "ktp.capture", retention="onboarding", one_at_a_time=True)


@dataclass(frozen=True)
class KtpCaptureRequest(ChallengedCapture):
    # What the partner's own OCR read, by capture-quality's field names.
    ocr_fields: Mapping[str, str]


@dataclass(frozen=True)
class FieldCheck:
    """One card field: OCR confidence, and agreement with the submission (no values).

    `comparison` is identity_ktp.compare's status (match, mismatch, not_submitted,
    not_read); `similarity` is set only when the field was compared."""

    name: str
    ocr_confidence: float
    matches_submitted: bool
    comparison: str = compare.NOT_SUBMITTED
    similarity: float | None = None


@dataclass(frozen=True)
class CardEvidence:
    card: KtpAssessment
    # The card's answer to the flash challenge (and the bundle's attestation).
    flash: LivenessDecision
    # The card portrait's enrollment (None when the card did not pass).
    enrolled: Enrolled | None

    @property
    def duplicates(self) -> tuple[Duplicate, ...]:
        return self.enrolled.duplicates if self.enrolled else ()

    @property
    def passed(self) -> bool | None:
        """A good card whose portrait is another customer's face waits for an analyst."""
        if not self.card.passed or not self.flash.live:
            return False
        return None if self.duplicates else True


@dataclass(frozen=True)
class KtpCaptureResult:
    verification: records.VerificationRecord
    tier: str
    enrollment_id: str
    field_checks: tuple[FieldCheck, ...]
    # True when this is the original answer to the same bundle sent again.
    replayed: bool = False


def field_checks(card: KtpAssessment, submitted: Mapping[str, str]) -> tuple[FieldCheck, ...]:
    """Every field the card showed or the partner submitted, compared format-blind."""
    read = {name: value.value for name, value in card.fields.items()}
    checks = []
    for c in compare.compare_fields(submitted, read, FIELD_SIMILARITY_MIN):
        value = card.fields.get(c.name)
        checks.append(
            FieldCheck(
                name=c.name,
                ocr_confidence=round(value.confidence, 4) if value is not None else 0.0,
                matches_submitted=c.status == compare.MATCH,
                comparison=c.status,
                similarity=c.score,
            )
        )
    return tuple(checks)


def _scores(
    card: KtpAssessment, checks: tuple[FieldCheck, ...], flash: LivenessDecision
) -> dict[str, float]:
    """The card's answer to the flash (when liveness judged it), every tamper
    signal's score (a repeated code gets a numbered key) and every compared
    field's similarity."""
    scores: dict[str, float] = {}
    if flash.decision_basis == CARD_FLASH:
        scores["flash"] = flash.flash_score
    for t in card.tamper:
        key = base = f"tamper_{t.code.lower()}"
        number = 1
        while key in scores:
            number += 1
            key = f"{base}_{number}"
        scores[key] = t.score
    for c in checks:
        if c.similarity is not None:
            scores[f"field_{c.name}"] = c.similarity
    return scores


def decide(evidence: CardEvidence, request: KtpCaptureRequest) -> Decision:
    card = evidence.card
    checks = field_checks(card, request.ocr_fields)
    reasons = list(card.reasons) + [
        Reason(t.code, "tamper signal")
        for t in card.tamper
        if t.decisive and not any(r.code == t.code for r in card.reasons)
    ]
    if not evidence.flash.live:
        reasons.extend(
            evidence.flash.reasons
            or (Reason("LIVENESS_FAILED", "the card did not answer the flash challenge"),)
        )
    if evidence.duplicates:
        reasons.append(
            Reason("DUPLICATE_FACE", "the card portrait matches another customer's reference")
        )
    return Decision(
        passed=evidence.passed,
        reasons=tuple(reasons),
        scores=_scores(card, checks, evidence.flash),
        model_ids={"ocr": card.ocr_model},
        input_hashes={"card_frame": hashlib.sha256(request.bundle.frames[0]).hexdigest()},
        details={
            "field_checks": [asdict(c) for c in checks],
            "enrollment_id": evidence.enrolled.enrollment_id if evidence.enrolled else "",
            "duplicate_customers": [d.customer_id for d in evidence.duplicates],
        },
        audit_details={
            "outcome": records.outcome_of(evidence.passed),
            "duplicate_customers": ",".join(d.customer_id for d in evidence.duplicates),
        },
        # The review links the customers; the new reference stays inactive in
        # matching (held on a duplicate) until an analyst decides.
        review_details={
            "duplicate_customers": [d.customer_id for d in evidence.duplicates],
            "enrollment_id": evidence.enrolled.enrollment_id if evidence.enrolled else "",
        }
        if evidence.duplicates
        else {},
    )


@dataclass
class KtpFlow:
    pipeline: CapturePipeline
    challenges: Challenges
    vault: PiiVault
    customers: customers.Customers
    quality: CaptureQuality
    liveness: Liveness
    embedder: Embedder
    matcher: Matcher
    clock: Clock

    async def issue_challenge(self, org_id: str, customer_id: str) -> Challenge:
        return await self.challenges.issue(org_id, customer_id, "ktp_capture")

    async def capture(self, org_id: str, request: KtpCaptureRequest) -> KtpCaptureResult:
        capture = bundles.receive(request.bundle, request.challenge_id)
        run = await self.pipeline.run(
            STEP,
            org_id,
            request,
            self._assess,
            decide,
            capture,
            self._keep_card_nik,
            recall=_recall,
            # A card held for review (its portrait is another customer's face)
            # refuses a new card before any model call: REVIEW_PENDING.
            precheck=reviews.none_pending(
                self.pipeline.store, org_id, request.customer_id, tiers.KTP_CAPTURE
            ),
        )
        return _result(run.recorded.verification, run.recorded.tier, run.replayed)

    async def _assess(self, subject: Subject, request: KtpCaptureRequest) -> CardEvidence:
        customer_id = subject.customer_id
        bundle = request.bundle
        known_nik = await self.pipeline.store.read(
            lambda s: self.vault.read_nik(s, records.load_customer(s, subject.org_id, customer_id))
        )
        submitted = {k: v for k, v in request.ocr_fields.items() if v}
        with biometrics.images_from("bundle.frames"):
            card = await self.quality.check_ktp(
                bundle.captured, known_nik or submitted.get("nik", ""), submitted
            )
        flash = await check_liveness(self.liveness, subject, "ktp_capture", card)
        enrolled = None
        if card.passed and flash.live and card.portrait_crops is not None:
            embedding = await self.embedder.embed(card.portrait_crops)
            enrolled = await self.matcher.enroll(
                customer_id,
                embedding,
                "ktp_extract",
                subject.verification_id,
                subject.match_threshold,
            )
        return CardEvidence(card, flash, enrolled)

    def _keep_card_nik(
        self, session: Session, customer: models.Customer, evidence: CardEvidence
    ) -> None:
        """A passed card gives a customer created without a NIK its NIK (and basic)."""
        card = evidence.card
        if evidence.passed and not customer.nik_sealed and card.nik_valid and card.ocr_nik:
            self.customers.record_nik(session, customer, card.ocr_nik, source="ktp_capture")


def _recall(seen: records.VerificationRecord) -> CardEvidence:
    """What a replay stands for (its answer is built from the verification)."""
    card = KtpAssessment(
        passed=seen.outcome != "failed",
        reasons=seen.reasons,
        fields={},
        nik_valid=False,
        tamper=(),
        portrait_found=False,
        ocr_model=seen.models.get("ocr", ""),
    )
    # The flash was judged then; the original outcome already holds its verdict.
    flash = LivenessDecision(
        live=True,
        pad_score=0.0,
        flash_score=seen.scores.get("flash", 0.0),
        reasons=(),
        decision_basis="replay",
    )
    return CardEvidence(card, flash, None)


def _result(
    verification: records.VerificationRecord, tier: str, replayed: bool = False
) -> KtpCaptureResult:
    details = verification.details
    return KtpCaptureResult(
        verification=verification,
        tier=tier,
        enrollment_id=str(details.get("enrollment_id", "")),
        field_checks=tuple(FieldCheck(**c) for c in details.get("field_checks", ())),
        replayed=replayed,
    )
