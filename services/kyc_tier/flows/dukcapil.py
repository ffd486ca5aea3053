"""A Dukcapil verdict: the population registry's answer, brought by the partner.

    POST /api/identity/nik/dukcapil   (nothing downstream)

The verdict is evidence: its canonical JSON is hashed into the verification
and the audit entry, and HMAC-verified when the organisation has an evidence
secret. It runs through the capture pipeline (no bundle to seal): a bad
signature is a refusal; a field that does not match is a failed verification.

A verdict may carry the registry's portrait. On a positive verdict the
portrait is checked like a reference photo (capture-quality: one face, found,
quality ok), embedded and enrolled as the customer's `dukcapil` reference
(matching makes it the active one: it ranks first). A portrait that fails
the checks refuses the whole submission (INVALID_ARGUMENT /
PORTRAIT_UNUSABLE): no verification, tier change or reference is written
(the refused attempt is recorded, as for every refusal), so the partner
resubmits with a usable portrait or none. A negative verdict enrolls nothing.
A portrait whose face is another customer's reference is held inactive by
matching and the verdict goes to review (DUPLICATE_FACE), as a KTP card does.

While a capture of the customer's waits for an analyst's review (a face held
inactive, which matching cannot compare with), a portrait waits too
(FAILED_PRECONDITION / REVIEW_PENDING, before any model call): it would
otherwise become the active face ahead of the decision. A customer who
already has an active reference (the KTP card's portrait, an onboarding
selfie, a promoted step-up: the face step-up matches) keeps it unless the
portrait shows that face: the portrait is verified against it at
the organisation's threshold before anything is enrolled, and a portrait of
someone else refuses the whole submission (FAILED_PRECONDITION /
PORTRAIT_MISMATCH, 409 at the gateway), written like PORTRAIT_UNUSABLE: a
refused, audited attempt and nothing else. Otherwise a positive verdict with
any portrait, which the signed evidence does not cover, would replace the
face a premium customer proved live with whoever the caller chose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from identity_runtime import signing
from identity_runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    invalid_field,
)
from services.kyc_tier import partners, tiers
from services.kyc_tier.flows import reviews
from services.kyc_tier.flows.biometrics import image_hashes, images_from
from services.kyc_tier.flows.face_matching import FaceMatching
from services.kyc_tier.flows.pipeline import Captured, CapturePipeline, Decision, Step, Subject
from services.kyc_tier.flows.promotion import reference_quality
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import CapturedFrames, Clock, Enrolled, FaceEmbedding, Reason

STEP = Step(tiers.DUKCAPIL_VERDICT, "dukcapil.submit")
# Fields that must match for a positive verdict (when reported).
REQUIRED_FIELDS = ("nik", "full_name", "birth_date")
FIELDS = ("nik", "full_name", "birth_date", "birth_place", "gender", "address")
MAX_AGE = timedelta(days=30)
MAX_FACE_SCORE = 100.0
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class DukcapilVerdict:
    field_matches: Mapping[str, bool]
    face_score: float
    reference: str
    verified_at: datetime | None


@dataclass(frozen=True)
class DukcapilRequest:
    customer_id: str
    verdict: DukcapilVerdict
    # HMAC-SHA256 of the evidence document under the organisation's secret.
    signature: str = ""
    # The registry's portrait (encoded image), when Dukcapil returned one.
    portrait: bytes = b""


@dataclass(frozen=True)
class VerdictEvidence:
    """The verdict's evidence document, hashed, and whether its signature was checked."""

    sha256: str
    signed: bool
    # The `dukcapil` reference the portrait became ("" when none).
    enrollment_id: str = ""
    # Other customers whose reference is the portrait's face: the reference is
    # held inactive and the verdict waits for an analyst (as a KTP card does).
    duplicate_customers: tuple[str, ...] = ()


DukcapilResult = Captured[VerdictEvidence]


def evidence_document(customer_id: str, verdict: DukcapilVerdict, now: datetime) -> bytes:
    """The canonical JSON the organisation signs; refuses a malformed verdict."""
    unknown = sorted(set(verdict.field_matches) - set(FIELDS))
    if unknown:
        raise invalid_field("verdict.field_matches", f"unknown field; allowed: {', '.join(FIELDS)}")
    if "nik" not in verdict.field_matches:
        raise invalid_field("verdict.field_matches", "must report the nik field")
    if not 1 <= len(verdict.reference) <= 128:
        raise invalid_field("verdict.reference", "must be 1 to 128 characters")
    # Any similarity scale Dukcapil reports (0-1, 0-10, 0-100), never more.
    if not 0.0 <= verdict.face_score <= MAX_FACE_SCORE:  # NaN fails too
        raise invalid_field("verdict.face_score", f"must be between 0 and {MAX_FACE_SCORE:g}")
    verified_at = verdict.verified_at
    if verified_at is None or not now - MAX_AGE <= verified_at <= now + CLOCK_SKEW:
        raise invalid_field("verdict.verified_at", "must be within the last 30 days")
    return signing.canonical_json(
        {
            "customer_id": customer_id,
            "field_matches": dict(sorted(verdict.field_matches.items())),
            "face_score": round(float(verdict.face_score), 6),
            "reference": verdict.reference,
            "verified_at": verified_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


def positive(verdict: DukcapilVerdict) -> bool:
    matches = verdict.field_matches
    return bool(matches.get("nik")) and all(
        matches[name] for name in REQUIRED_FIELDS if name in matches
    )


def decide(evidence: VerdictEvidence, request: DukcapilRequest) -> Decision:
    verdict, evidence_sha256, signed = request.verdict, evidence.sha256, evidence.signed
    matches = verdict.field_matches
    duplicates = list(evidence.duplicate_customers)
    passed = positive(verdict) and (None if duplicates else True)
    details: dict[str, object] = {"signed": signed, "fields": sorted(matches)}
    if evidence.enrollment_id:
        details["enrollment_id"] = evidence.enrollment_id
        details["duplicate_customers"] = duplicates
    reasons = [
        Reason(f"DUKCAPIL_{name.upper()}_MISMATCH")
        for name, ok in sorted(matches.items())
        if not ok
    ]
    if duplicates:
        reasons.append(
            Reason("DUPLICATE_FACE", "the portrait matches another customer's reference")
        )
    return Decision(
        passed=passed,
        reasons=tuple(reasons),
        scores={"face_score": float(verdict.face_score)},
        input_hashes={"verdict": evidence_sha256, **image_hashes(portrait=request.portrait)},
        details=details,
        audit_details={"signed": signed, "portrait_enrolled": bool(evidence.enrollment_id)},
        audit_evidence={"verdict": evidence_sha256, **image_hashes(portrait=request.portrait)},
        review_details={"duplicate_customers": duplicates, "enrollment_id": evidence.enrollment_id}
        if duplicates
        else {},
    )


@dataclass
class DukcapilFlow:
    pipeline: CapturePipeline
    vault: PiiVault
    clock: Clock
    matching: FaceMatching

    async def submit(self, org_id: str, request: DukcapilRequest) -> DukcapilResult:
        document = evidence_document(request.customer_id, request.verdict, self.clock())

        async def check_signature(subject: Subject, request: DukcapilRequest) -> VerdictEvidence:
            """A signature that does not verify is refused; none is needed without a secret."""
            secret = await self.pipeline.store.read(
                lambda s: partners.evidence_secret(s, self.vault, subject.org_id)
            )
            if secret is not None and not signing.verify(secret, document, request.signature):
                raise PermissionDenied(
                    "the verdict's signature does not verify", "EVIDENCE_SIGNATURE_INVALID"
                )
            enrolled = None
            if request.portrait and positive(request.verdict):
                enrolled = await self._enroll_portrait(subject, request.portrait)
            return VerdictEvidence(
                hashlib.sha256(document).hexdigest(),
                secret is not None,
                enrolled.enrollment_id if enrolled else "",
                tuple(d.customer_id for d in enrolled.duplicates) if enrolled else (),
            )

        return await self.pipeline.run(STEP, org_id, request, check_signature, decide)

    async def _enroll_portrait(self, subject: Subject, portrait: bytes) -> Enrolled:
        """The portrait as the customer's `dukcapil` reference, or PORTRAIT_UNUSABLE."""
        held = await self.pipeline.store.read(
            lambda s: reviews.pending_kind(s, subject.org_id, subject.customer_id)
        )
        if held is not None:
            raise reviews.review_pending(held)
        quality = self.matching.quality
        with images_from("portrait"):
            face = await quality.assess_face(CapturedFrames((portrait,)), "reference")
        if not face.face_found or not face.passed or face.crops is None:
            codes = [r.code for r in face.reasons] or ["FACE_NOT_FOUND"]
            raise InvalidArgument(
                "portrait: not usable as a reference (" + ", ".join(codes) + ")",
                "PORTRAIT_UNUSABLE",
                {"field": "portrait.data", "quality_reasons": ",".join(codes)},
            )
        embedding = await self.matching.embedder.embed(face.crops)
        await self._require_verified_face(subject, embedding)
        return await self.matching.matcher.enroll(
            subject.customer_id,
            embedding,
            "dukcapil",
            subject.verification_id,
            subject.match_threshold,
            quality=reference_quality(face.quality),
        )

    async def _require_verified_face(self, subject: Subject, portrait: FaceEmbedding) -> None:
        """Refuse a portrait that is not the face the customer was verified
        with (their active reference), before it could displace it."""
        if not await self.matching.has_active_enrollment(subject.customer_id):
            return  # nothing verified yet: the portrait is the first reference
        match = await self.matching.matcher.verify_enrolled(
            subject.customer_id, portrait, threshold=subject.match_threshold
        )
        if not match.match:
            raise FailedPrecondition(
                "portrait: does not show the face the customer was verified with "
                "(their active reference); nothing was recorded",
                "PORTRAIT_MISMATCH",
                {"field": "portrait.data"},
            )
