"""Step-up: is the person holding the device the enrolled customer, live, now?

    POST /api/identity/auth/step-up
    liveness.CheckAttestation || matching.ListEnrollments (while the attempt starts)
    -> capture-quality.AssessFace -> liveness.CheckLiveness || embedding.Embed x2
        -> matching.Verify (a flash frame's face against the baseline's)
        -> matching.Verify (the enrolled reference, or a partner's reference image)

`decide` is the step-up decision as a pure function of what the mesh said;
the flow around it is the capture pipeline. Protocol violations (replayed
nonce, spent challenge, bad signature, no enrolled reference) are refusals;
a spoof, a mismatch or a bad capture is `allow: false` with reasons.
Step-up never changes the tier, and its frames are kept 90 days.

A replay (the same nonce and bundle again) answers the original decision only
for the action and the reference it was decided for: neither is in the
bundle's signed digest, so the bundle sent for another action or reference
is refused (ALREADY_EXISTS / STEP_UP_REPLAYED_FOR_OTHER_ACTION, _REFERENCE:
a refused, audited attempt) instead of answering `allow` for a request nobody
decided. Every answer names its `action` and `reference_source`. A capture
SDK session never sends a reference image (flows/step_up_rules.py).

An allowed step-up against the enrolled reference may promote its capture to
the customer's reference (`step_up_promotion`, flows/promotion.py), audited
as `enrollment.promoted` in the decision's transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from identity_runtime.errors import FailedPrecondition
from identity_runtime.reason_codes import check_reason
from services.kyc_tier import bundles, models, outbox, ports, records, tiers
from services.kyc_tier.flows import biometrics, step_up_rules
from services.kyc_tier.flows.capture import ChallengedCapture, check_liveness
from services.kyc_tier.flows.face_matching import FaceMatching
from services.kyc_tier.flows.pipeline import CapturePipeline, Decision, Step, Subject
from services.kyc_tier.flows.prechecks import CheckedLiveness
from services.kyc_tier.flows.promotion import PromotionPolicy, choose_promotion, reference_quality

STEP = Step(tiers.STEP_UP, "stepup.decide", retention="step_up", settles_tier=False)


@dataclass(frozen=True)
class StepUpRequest(ChallengedCapture):
    # What the partner is about to authorise ("transfer"); kept with the decision.
    action: str = ""
    # A partner's reference image to match instead of the enrolled reference.
    reference_image: bytes = b""


@dataclass(frozen=True)
class StepUpEvidence:
    """What the mesh said about one step-up capture."""

    face: ports.FaceAssessment
    liveness: ports.LivenessDecision
    # None when no face could be embedded (nothing to match).
    probe: ports.FaceEmbedding | None
    match: ports.MatchResult | None
    # A flash frame's face against the baseline's (None: not compared).
    frames: ports.MatchResult | None = None
    # (new enrollment id, superseded enrollment id) when the capture was promoted.
    promoted: tuple[str, str] | None = None


@dataclass(frozen=True)
class StepUpResult:
    allow: bool
    reasons: tuple[ports.Reason, ...]
    verification_id: str
    liveness: ports.LivenessDecision
    match: ports.MatchResult | None
    # True when this is the original answer to the same bundle sent again.
    replayed: bool = False
    # The action the decision was made for (a replay's is the original's).
    action: str = ""
    # "enrolled" or "partner_image": what the live face was matched against.
    reference_source: str = ""


def recall(seen: records.VerificationRecord) -> StepUpEvidence:
    """What a replay of a step-up answers with."""
    return StepUpEvidence(
        biometrics.recall_face(seen),
        biometrics.recall_liveness(seen),
        biometrics.recall_probe(seen),
        biometrics.recall_match(seen),
        biometrics.recall_frames(seen),
    )


def decide(evidence: StepUpEvidence, request: StepUpRequest) -> Decision:
    """Allow only a capture of good quality, judged live, matching the reference."""
    face, liveness, match = evidence.face, evidence.liveness, evidence.match
    reasons = list(biometrics.liveness_reasons(face, liveness))
    if match is not None and not match.match:
        reasons.append(ports.Reason("FACE_MISMATCH", "the live face does not match the reference"))
    allow = face.passed and liveness.live and match is not None and match.match
    return Decision(
        passed=allow,
        reasons=tuple(reasons),
        scores={
            **biometrics.quality_scores(face),
            **biometrics.liveness_scores(liveness),
            **(biometrics.match_scores(match) if match else {}),
            **biometrics.frames_scores(evidence.frames),
        },
        model_ids={
            "detector": face.detector_model,
            "decision_basis": liveness.decision_basis,
            **({"embedding": evidence.probe.model_id} if evidence.probe else {}),
        },
        input_hashes=biometrics.image_hashes(reference_image=request.reference_image),
        details={
            **biometrics.capture_details(face, liveness),
            "action": request.action,
            "reference": biometrics.reference_kind(request.reference_image),
            **({"promoted_enrollment_id": evidence.promoted[0]} if evidence.promoted else {}),
        },
        audit_details={
            "action": request.action,
            "reference_source": biometrics.reference_kind(request.reference_image),
        },
    )


@dataclass
class StepUpFlow:
    pipeline: CapturePipeline
    quality: ports.CaptureQuality
    liveness: CheckedLiveness
    matching: FaceMatching
    promotion: PromotionPolicy = field(default_factory=PromotionPolicy)

    async def step_up(self, org_id: str, request: StepUpRequest) -> StepUpResult:
        step_up_rules.refuse_reference_from_sdk_session(request.reference_image)
        capture = bundles.receive(request.bundle, request.challenge_id)
        # Chained into the audit log, which no erasure removes: a code, like a reason.
        check_reason(request.action, "action")

        # The customer's enrollments, listed by the precheck: the reference
        # it requires, and what a promotion would replace.
        listed: list[list[ports.EnrollmentInfo]] = []

        async def precheck(resume: bool) -> None:
            await self._precheck(request, capture, resume, listed)

        async def assess(subject: Subject, request: StepUpRequest) -> StepUpEvidence:
            return await self._assess(subject, request, listed[-1] if listed else None)

        run = await self.pipeline.run(
            STEP,
            org_id,
            request,
            assess,
            decide,
            capture,
            _audit_promotion,
            recall=recall,
            precheck=precheck,
        )
        decided_for = str(run.decision.details.get("action", ""))
        refusal = (
            step_up_rules.replay_refusal(run.decision, request.action, request.reference_image)
            if run.replayed
            else None
        )
        if refusal is not None:
            async with self.pipeline.attempt(STEP, org_id, request.customer_id):
                raise refusal
        return StepUpResult(
            allow=bool(run.decision.passed),
            reasons=run.decision.reasons,
            verification_id=run.recorded.verification.verification_id,
            liveness=run.assessment.liveness,
            match=run.assessment.match,
            replayed=run.replayed,
            action=decided_for,
            reference_source=str(run.decision.details.get("reference", "")),
        )

    async def _precheck(
        self,
        request: StepUpRequest,
        capture: bundles.Capture,
        resume: bool,
        listed: list[list[ports.EnrollmentInfo]],
    ) -> None:
        """Everything that can refuse the request, before any model work: the
        device signature, nonce and challenge (liveness, nothing consumed) and,
        at the same time, an enrolled reference to match against."""
        checks = [
            self.liveness.check_attestation(capture.signed(request.customer_id, "step_up"), resume)
        ]
        if not request.reference_image:
            checks.append(self._require_reference(request.customer_id, listed))
        await asyncio.gather(*checks)

    async def _require_reference(
        self, customer_id: str, listed: list[list[ports.EnrollmentInfo]]
    ) -> None:
        enrollments = await self.matching.matcher.list_enrollments(
            customer_id, include_retired=True
        )
        listed.append(enrollments)
        if not any(e.active for e in enrollments):
            raise FailedPrecondition(
                "the customer has no face reference to match against", "NO_ACTIVE_ENROLLMENT"
            )

    async def _assess(
        self,
        subject: Subject,
        request: StepUpRequest,
        enrollments: list[ports.EnrollmentInfo] | None = None,
    ) -> StepUpEvidence:
        # A partner's reference image is judged beside the selfie, before liveness
        # spends the nonce and challenge: refused for it, the capture stays usable.
        face, reference = await asyncio.gather(
            self._selfie(request.bundle), self.matching.reference(request.reference_image)
        )
        # Liveness and the probe embedding are independent: run them together.
        liveness_call = check_liveness(self.liveness, subject, "step_up", face)
        probe: ports.FaceEmbedding | None = None
        frames: ports.MatchResult | None = None
        with biometrics.images_from("bundle.frames"):
            if face.crops is not None:
                liveness, (probe, frames) = await asyncio.gather(
                    liveness_call, self.matching.embed_capture(face)
                )
            else:
                liveness = await liveness_call
        match = None
        if probe is not None:
            match = await self.matching.verify(
                subject.customer_id, probe, reference, subject.match_threshold
            )
        liveness = biometrics.tied(liveness, frames)
        evidence = StepUpEvidence(face, liveness, probe, match, frames)
        if probe is not None and not request.reference_image and decide(evidence, request).passed:
            return await self._promote(subject, evidence, probe, enrollments)
        return evidence

    async def _selfie(self, bundle: bundles.BundleInput) -> ports.FaceAssessment:
        with biometrics.images_from("bundle.frames"):
            return await self.quality.assess_face(bundle.captured, "selfie")

    async def _promote(
        self,
        subject: Subject,
        evidence: StepUpEvidence,
        probe: ports.FaceEmbedding,
        enrollments: list[ports.EnrollmentInfo] | None,
    ) -> StepUpEvidence:
        """Enroll an allowed capture as the reference when the policy says so
        (`enrollments`: as the precheck listed them; None: listed now)."""
        assert evidence.match is not None
        quality = reference_quality(evidence.face.quality)
        matcher = self.matching.matcher
        if enrollments is None:
            enrollments = await matcher.list_enrollments(subject.customer_id, include_retired=True)
        replaced = choose_promotion(
            self.promotion, quality, evidence.match, enrollments, datetime.now(UTC)
        )
        if replaced is None:
            return evidence
        enrolled = await matcher.enroll(
            subject.customer_id,
            probe,
            "step_up_promotion",
            subject.verification_id,
            subject.match_threshold,
            quality=quality,
            supersedes=replaced.enrollment_id,
        )
        if not enrolled.active:  # held: a duplicate of another customer's face
            return evidence
        return dataclasses.replace(
            evidence, promoted=(enrolled.enrollment_id, replaced.enrollment_id)
        )


def _audit_promotion(session: Session, customer: models.Customer, evidence: StepUpEvidence) -> None:
    if evidence.promoted is None:
        return
    outbox.record(
        session,
        customer.org_id,
        "enrollment.promoted",
        f"customer:{customer.customer_id}",
        "success",
        details={"enrollment_id": evidence.promoted[0], "superseded": evidence.promoted[1]},
    )
