"""What one run of the capture pipeline works with: the flow's `Step`, the
`Subject` of an attempt, the flow's `Decision`, and what is `Recorded` and
`Captured` (see `pipeline.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from services.kyc_tier import bundles, records
from services.kyc_tier.ports import (
    DEFAULT_LIVENESS_POLICY,
    Liveness,
    LivenessDecision,
    LivenessEvidence,
    LivenessPolicy,
    Reason,
    SignedCapture,
)

A = TypeVar("A")


@dataclass(frozen=True)
class ChallengedCapture:
    """A capture answering a challenge (KTP, face liveness, step-up): whose,
    which challenge, and the signed bundle."""

    customer_id: str
    challenge_id: str
    bundle: bundles.BundleInput


@dataclass(frozen=True)
class Step:
    """What a flow records: its verification kind and its audit action."""

    kind: str
    action: str
    # Retention class of the sealed capture bundle (bundles.RETENTION).
    retention: str = "onboarding"
    # Recompute the tier after recording (locks the customer row meanwhile).
    settles_tier: bool = True
    # One capture of this kind per customer at a time: while one runs, another
    # is refused (CAPTURE_IN_PROGRESS) before any model call. For the kinds
    # that may hold the customer for review: two at once would both pass the
    # pending-review check, enroll twice and open two items on one person.
    one_at_a_time: bool = False


@dataclass(frozen=True)
class ReplayKey:
    """What makes a capture idempotent: the nonce the partner chose and the
    canonical digest of what it sent (a bundle's `bundle_sha256`, or a
    match request's digest). The same nonce with the same digest is the same
    request; with another digest it is a replayed nonce."""

    nonce: str
    digest: str

    @classmethod
    def of(cls, capture: bundles.Capture) -> ReplayKey:
        return cls(capture.nonce, capture.sha256)


@dataclass(frozen=True)
class Subject:
    """Who an attempt is about, resolved when it starts."""

    org_id: str
    customer_id: str
    # Chosen before assessing, so that a downstream record can cite it.
    verification_id: str
    # The organisation's face-match threshold; None leaves matching's default.
    match_threshold: float | None
    # The received bundle, validated and digested (None for evidence without one).
    capture: bundles.Capture | None = None
    # The attempt recorded as started (finished by the record transaction).
    attempt_id: str = ""
    # An earlier attempt with the same nonce and digest was cut short after
    # liveness may have spent the challenge and nonce: this one resumes it.
    resume: bool = False
    # The request's nonce and digest, when it carries a nonce.
    key: ReplayKey | None = None
    # The organisation's liveness switches, sent with its liveness checks.
    liveness_policy: LivenessPolicy = DEFAULT_LIVENESS_POLICY

    def signed_capture(self, purpose: str) -> SignedCapture:
        """The received bundle as liveness checks it (flows that receive one only)."""
        if self.capture is None:
            raise ValueError("this attempt received no capture bundle")
        return self.capture.signed(self.customer_id, purpose)


def check_liveness(
    liveness: Liveness, subject: Subject, purpose: str, evidence: LivenessEvidence | None
) -> Awaitable[LivenessDecision]:
    """liveness's check of the subject's capture, under its organisation's
    policy (resuming the capture when the attempt resumes one)."""
    return liveness.check(
        subject.signed_capture(purpose), evidence, subject.liveness_policy, resume=subject.resume
    )


@dataclass(frozen=True)
class Decision:
    """What decide makes of an assessment, and what the verification row keeps."""

    passed: bool | None  # None: an analyst decides
    reasons: tuple[Reason, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)
    model_ids: Mapping[str, str] = field(default_factory=dict)
    input_hashes: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    # Extra details and evidence hashes of the audit entry (ids and codes only).
    audit_details: Mapping[str, Any] = field(default_factory=dict)
    audit_evidence: Mapping[str, str] = field(default_factory=dict)
    # What the review item records beside the verification (passed None only).
    review_details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    verification: records.VerificationRecord
    tier: str  # the customer's tier once settled


@dataclass(frozen=True)
class Captured(Generic[A]):
    """One run of the pipeline: what was assessed, decided and recorded."""

    assessment: A
    decision: Decision
    recorded: Recorded
    # True when this is the original answer to the same request sent again
    # (the assessment then is what the flow recalls of the verification).
    replayed: bool = False


# Extra writes of a flow in the record transaction, before the tier is settled.
