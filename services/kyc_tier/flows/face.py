"""Face liveness and face match: the two steps from standard to premium.

    POST /api/identity/face/liveness
        capture-quality.AssessFace -> liveness.CheckLiveness (PAD, flash)
        -> the first reference: embedding.Embed + matching.Enroll onboarding_selfie
    POST /api/identity/face/match
        the probe from a passed liveness capture (its sealed bundle reopened)
        or an image -> capture-quality -> embedding -> matching.Verify;
        answers a decision and a coarse band, never the score
    POST /api/identity/face/flash-challenge   liveness.IssueChallenge
    GET  /api/identity/face/enrollments       matching.ListEnrollments

Both run through the capture pipeline. A match counts towards premium only
when it compares a live capture with the enrolled reference. While a held
selfie's review is pending, a new selfie is refused before any model call
(REVIEW_PENDING; a replay of the held one still answers). A match citing a
held selfie follows the analyst's verdict (`reviews.verdict_outcome`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from identity_runtime.errors import invalid_field
from services.kyc_tier import bundles, records, tiers
from services.kyc_tier.flows import biometrics, replays, reviews
from services.kyc_tier.flows.capture import ChallengedCapture, ReplayKey, check_liveness
from services.kyc_tier.flows.devices import Challenges
from services.kyc_tier.flows.face_matching import FaceMatching
from services.kyc_tier.flows.pipeline import Captured, CapturePipeline, Decision, Step, Subject
from services.kyc_tier.flows.promotion import reference_quality
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import (
    BundleCodec,
    CaptureQuality,
    Challenge,
    Duplicate,
    Enrolled,
    EnrollmentInfo,
    FaceAssessment,
    FaceEmbedding,
    Liveness,
    LivenessDecision,
    MatchResult,
    Reason,
    StoredFrames,
)

LIVENESS = Step(tiers.FACE_LIVENESS, "face.liveness", retention="onboarding", one_at_a_time=True)
MATCH = Step(tiers.FACE_MATCH, "face.match")
FLASH_PURPOSES = ("face_liveness", "step_up")


@dataclass(frozen=True)
class LivenessRequest(ChallengedCapture):
    """A face liveness capture: the challenged capture, nothing more."""


@dataclass(frozen=True)
class LivenessEvidence:
    face: FaceAssessment
    liveness: LivenessDecision
    # The reference enrolled from this capture ("" when the customer had one).
    enrollment_id: str
    # Other customers whose face it matches: matching holds the reference.
    duplicates: tuple[Duplicate, ...] = ()
    # A flash frame's face against the baseline's (None: not compared).
    frames: MatchResult | None = None


@dataclass(frozen=True)
class MatchRequest:
    customer_id: str
    # The probe: the frames of a passed liveness capture, or else an image.
    liveness_verification_id: str = ""
    probe_image: bytes = b""
    # A partner's reference image to match instead of the enrolled reference.
    reference_image: bytes = b""
    # The partner's nonce for this request (optional): the same nonce and
    # request again returns the original verification.
    nonce: str = ""

    def replay_key(self) -> ReplayKey | None:
        request = (self.customer_id, self.liveness_verification_id)
        images = (self.probe_image, self.reference_image)
        return replays.request_key(self.nonce, "face-match", *request, *images)


# A match whose estimated false-match rate is at most this is "high".
HIGH_BAND_FALSE_MATCH_RATE = 1e-6


@dataclass(frozen=True)
class MatchEvidence:
    probe: FaceEmbedding
    match: MatchResult

    @property
    def band(self) -> str:
        """What partners are told instead of the score: "low" (no match),
        "medium" or "high" (a match, by its calibrated false-match estimate).
        Below the threshold it says nothing more, so it is no gradient to
        climb."""
        if not self.match.match:
            return "low"
        if self.match.estimated_false_match_rate <= HIGH_BAND_FALSE_MATCH_RATE:
            return "high"
        return "medium"


def recall_liveness(seen: records.VerificationRecord) -> LivenessEvidence:
    """What a replay of a liveness capture answers with."""
    face, liveness = biometrics.recall_face(seen), biometrics.recall_liveness(seen)
    enrollment_id = str(seen.details.get("enrollment_id", ""))
    duplicates, frames = biometrics.recall_duplicates(seen), biometrics.recall_frames(seen)
    return LivenessEvidence(face, liveness, enrollment_id, duplicates, frames)


def recall_match(seen: records.VerificationRecord) -> MatchEvidence:
    """What a replay of a match answers with (a match always has both)."""
    match, probe = biometrics.recall_match(seen), biometrics.recall_probe(seen)
    assert match is not None and probe is not None
    return MatchEvidence(probe, match)


# What each flow answers: the evidence, the decision and the verification recorded.
LivenessResult = Captured[LivenessEvidence]
FaceMatchResult = Captured[MatchEvidence]


def decide_liveness(evidence: LivenessEvidence, request: LivenessRequest) -> Decision:
    """A live selfie matching another customer's face waits for an analyst
    (a review item, as for a KTP card), its reference held inactive."""
    face, liveness, duplicates = evidence.face, evidence.liveness, evidence.duplicates
    held = (Reason("DUPLICATE_FACE", "the selfie matches another customer's reference"),)
    review = biometrics.duplicate_review(duplicates, evidence.enrollment_id)
    named = {"duplicate_customers": ",".join(d.customer_id for d in duplicates)} if review else {}
    return Decision(
        passed=None if duplicates else liveness.live and face.passed,
        reasons=biometrics.liveness_reasons(face, liveness) + (held if duplicates else ()),
        scores={
            **biometrics.quality_scores(face),
            **biometrics.liveness_scores(liveness),
            **{f"pad_{k}": v for k, v in liveness.pad_models.items()},
            **biometrics.frames_scores(evidence.frames),
        },
        model_ids={"detector": face.detector_model, "decision_basis": liveness.decision_basis},
        details={
            **biometrics.capture_details(face, liveness),
            "enrollment_id": evidence.enrollment_id,
            **review,
        },
        audit_details={"basis": liveness.decision_basis, **named},
        review_details=review,
    )


def decide_match(evidence: MatchEvidence, request: MatchRequest) -> Decision:
    match = evidence.match
    live_link = request.liveness_verification_id
    # What premium needs: the enrolled reference matched on a live capture.
    against_enrolled_live = bool(live_link) and not request.reference_image and match.match
    mismatch = Reason("FACE_MISMATCH", "the faces do not match at the organisation's threshold")
    return Decision(
        passed=match.match,
        reasons=() if match.match else (mismatch,),
        scores=biometrics.match_scores(match),
        model_ids={"embedding": evidence.probe.model_id},
        input_hashes=biometrics.image_hashes(
            probe_image=request.probe_image, reference_image=request.reference_image
        ),
        details={
            "against_enrolled_live": against_enrolled_live,
            "liveness_verification_id": live_link,
            "reference": biometrics.reference_kind(request.reference_image),
            "enrollment_id": match.enrollment_id,
        },
        audit_details={"score": round(match.score, 4), "threshold": match.threshold},
    )


@dataclass
class FaceFlow:
    pipeline: CapturePipeline
    challenges: Challenges
    vault: PiiVault
    quality: CaptureQuality
    liveness: Liveness
    matching: FaceMatching
    codec: BundleCodec

    async def issue_flash_challenge(self, org_id: str, customer_id: str, purpose: str) -> Challenge:
        """A selfie challenge: face liveness (the default) or step-up."""
        if purpose and purpose not in FLASH_PURPOSES:
            raise invalid_field("purpose", "must be face liveness or step-up")
        return await self.challenges.issue(org_id, customer_id, purpose or "face_liveness")

    async def check_liveness(self, org_id: str, request: LivenessRequest) -> LivenessResult:
        capture = bundles.receive(request.bundle, request.challenge_id)
        return await self.pipeline.run(
            LIVENESS,
            org_id,
            request,
            self._assess_liveness,
            decide_liveness,
            capture,
            recall=recall_liveness,
            precheck=reviews.none_pending(
                self.pipeline.store, org_id, request.customer_id, tiers.FACE_LIVENESS
            ),
        )

    async def _assess_liveness(
        self, subject: Subject, request: LivenessRequest
    ) -> LivenessEvidence:
        bundle = request.bundle
        with biometrics.images_from("bundle.frames"):
            face = await self.quality.assess_face(bundle.captured, "selfie")
            decision = await check_liveness(self.liveness, subject, "face_liveness", face)
            if not (decision.live and face.passed and face.crops is not None):
                return LivenessEvidence(face, decision, "")
            probe, frames = await self.matching.embed_capture(face)
        decision = biometrics.tied(decision, frames)
        enrolled = None
        if decision.live:
            enrolled = await self._enroll_first_reference(subject, face, probe)
        if enrolled is None:
            return LivenessEvidence(face, decision, "", frames=frames)
        return LivenessEvidence(face, decision, enrolled.enrollment_id, enrolled.duplicates, frames)

    async def _enroll_first_reference(
        self, subject: Subject, face: FaceAssessment, embedding: FaceEmbedding
    ) -> Enrolled | None:
        """A live selfie becomes the reference only when the customer has none."""
        if await self.matching.has_active_enrollment(subject.customer_id):
            return None
        enrolled = await self.matching.matcher.enroll(
            subject.customer_id,
            embedding,
            "onboarding_selfie",
            subject.verification_id,
            subject.match_threshold,
            quality=reference_quality(face.quality),
        )
        return enrolled

    async def match(self, org_id: str, request: MatchRequest) -> FaceMatchResult:
        return await self.pipeline.run(
            MATCH,
            org_id,
            request,
            self._assess_match,
            decide_match,
            recall=recall_match,
            key=request.replay_key(),
        )

    async def _assess_match(self, subject: Subject, request: MatchRequest) -> MatchEvidence:
        probe = await self._probe(subject, request)
        reference = await self.matching.reference(request.reference_image)
        match = await self.matching.verify(
            subject.customer_id, probe, reference, subject.match_threshold
        )
        return MatchEvidence(probe, match)

    async def _probe(self, subject: Subject, request: MatchRequest) -> FaceEmbedding:
        if request.liveness_verification_id:
            stored = await self._live_frames(subject, request.liveness_verification_id)
            return await self.matching.embed_images(
                stored.frames,
                "selfie",
                stored.baseline,
                frames_field="liveness_verification_id",
            )
        if request.probe_image:
            return await self.matching.embed_images(
                [request.probe_image], "reference", frames_field="probe_image"
            )
        raise invalid_field("probe_image", "give a probe image or a liveness_verification_id")

    async def _live_frames(self, subject: Subject, verification_id: str) -> StoredFrames:
        """The frames of the customer's passed liveness capture, from its sealed bundle."""

        def load(session: Session) -> bytes:
            ids = (subject.org_id, subject.customer_id, verification_id)
            return bundles.open_passed_capture(
                session, self.vault, *ids, outcome=reviews.verdict_outcome
            )

        return self.codec.decode(await self.pipeline.store.write(load))

    async def list_enrollments(
        self, org_id: str, customer_id: str, include_retired: bool
    ) -> list[EnrollmentInfo]:
        await self.pipeline.store.read(lambda s: records.load_customer(s, org_id, customer_id))
        return await self.matching.matcher.list_enrollments(customer_id, include_retired)
