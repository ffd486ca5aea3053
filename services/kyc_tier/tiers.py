"""The KYC tier ladder, computed from verification history.

    none     -> nothing verified
    basic    -> a valid NIK (a passed NIK_FORMAT verification)
    standard -> basic + (a passed KTP capture OR a Dukcapil verdict)
    premium  -> standard + face liveness + a face match to the enrolled
                reference made on a live capture

A tier is never set by hand: the only other way up is an approved analyst
review (a passed MANUAL_REVIEW verification naming the tier), which is itself
a verification in the history. A review only vouches for the step it held
(`REVIEW_SCOPES`): it may grant at most the tier that step leads to, and only
when every other requirement of that tier is met. Failed verifications never
lower a tier; an erased customer is `none`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from identity_runtime.errors import FailedPrecondition

TIERS = ("none", "basic", "standard", "premium")
RANK = {tier: index for index, tier in enumerate(TIERS)}

NIK_FORMAT = "nik_format"
KTP_CAPTURE = "ktp_capture"
FACE_LIVENESS = "face_liveness"
FACE_MATCH = "face_match"
DUKCAPIL_VERDICT = "dukcapil_verdict"
STEP_UP = "step_up"
MANUAL_REVIEW = "manual_review"
# Every kind of verification, in the order of the contract's enum.
KINDS = (
    NIK_FORMAT,
    KTP_CAPTURE,
    FACE_LIVENESS,
    FACE_MATCH,
    DUKCAPIL_VERDICT,
    STEP_UP,
    MANUAL_REVIEW,
)


@dataclass(frozen=True)
class ReviewScope:
    """What an approved review of one kind of verification vouches for."""

    # The requirement (a `missing_for` name) the review stands in for.
    waives: str
    # The highest tier the reviewed step leads to.
    ceiling: str


_KTP_OR_DUKCAPIL = "ktp_capture_passed_or_dukcapil_verdict"
# Reviews are raised on a held KTP card, Dukcapil portrait or onboarding
# selfie (a duplicate face, a borderline card); an analyst approving one
# says nothing about any other step of the ladder.
REVIEW_SCOPES = {
    KTP_CAPTURE: ReviewScope(_KTP_OR_DUKCAPIL, "standard"),
    DUKCAPIL_VERDICT: ReviewScope(_KTP_OR_DUKCAPIL, "standard"),
    FACE_LIVENESS: ReviewScope(FACE_LIVENESS, "premium"),
}
# A review of any other kind (none is raised) grants nothing.
NO_REVIEW_SCOPE = ReviewScope("", "none")


@dataclass(frozen=True)
class Evidence:
    """What the ladder needs of one verification."""

    verification_id: str
    kind: str
    passed: bool
    # FACE_MATCH: compared with the enrolled reference (not a partner image)
    # on a live capture. MANUAL_REVIEW: the tier it grants.
    against_enrolled_live: bool = False
    granted_tier: str = ""


@dataclass(frozen=True)
class Requirement:
    name: str
    tier: str
    satisfied_by: str  # verification id, "" when unmet


@dataclass(frozen=True)
class TierStatus:
    tier: str
    requirements: tuple[Requirement, ...]
    next_tier: str
    missing_for_next: tuple[str, ...]


def _first(evidence: Iterable[Evidence], kind: str, *, enrolled_live: bool = False) -> str:
    for item in evidence:
        if item.kind == kind and item.passed and (not enrolled_live or item.against_enrolled_live):
            return item.verification_id
    return ""


def compute(evidence: list[Evidence], erased: bool = False) -> TierStatus:
    """The tier the history earns, with each requirement and what is missing."""
    nik = _first(evidence, NIK_FORMAT)
    ktp = _first(evidence, KTP_CAPTURE)
    dukcapil = _first(evidence, DUKCAPIL_VERDICT)
    liveness = _first(evidence, FACE_LIVENESS)
    match = _first(evidence, FACE_MATCH, enrolled_live=True)
    requirements = (
        Requirement("valid_nik", "basic", nik),
        Requirement("ktp_capture_passed", "standard", ktp),
        Requirement("dukcapil_verdict", "standard", dukcapil),
        Requirement("face_liveness", "premium", liveness),
        Requirement("face_match", "premium", match),
    )
    earned = "none"
    if nik:
        earned = "basic"
        if ktp or dukcapil:
            earned = "standard"
            if liveness and match:
                earned = "premium"
    for item in evidence:
        if (
            item.kind == MANUAL_REVIEW
            and item.passed
            and RANK.get(item.granted_tier, 0) > RANK[earned]
        ):
            earned = item.granted_tier
    if erased:
        earned = "none"
    next_tier = TIERS[min(RANK[earned] + 1, len(TIERS) - 1)]
    missing: tuple[str, ...] = ()
    if not erased and earned != "premium":
        missing = tuple(missing_for(next_tier, requirements))
    return TierStatus(
        earned, requirements, next_tier if earned != "premium" else "premium", missing
    )


def missing_for(target: str, requirements: tuple[Requirement, ...]) -> list[str]:
    """Requirement names still unmet on the way to `target`."""
    met = {r.name for r in requirements if r.satisfied_by}
    needed: list[str] = []
    if RANK[target] >= RANK["basic"] and "valid_nik" not in met:
        needed.append("valid_nik")
    if RANK[target] >= RANK["standard"] and not ({"ktp_capture_passed", "dukcapil_verdict"} & met):
        needed.append(_KTP_OR_DUKCAPIL)
    if RANK[target] >= RANK["premium"]:
        needed.extend(name for name in ("face_liveness", "face_match") if name not in met)
    return needed


def missing_beside_review(
    target: str, requirements: tuple[Requirement, ...], scope: ReviewScope
) -> list[str]:
    """What `target` still needs once an approved review within `scope` stands
    in for its own step; everything when the target is beyond that step."""
    if RANK[target] > RANK[scope.ceiling]:
        raise FailedPrecondition(
            f"an approved review of this step unlocks at most the {scope.ceiling} tier",
            "REVIEW_SCOPE_EXCEEDED",
            {"max_tier": scope.ceiling},
        )
    return [name for name in missing_for(target, requirements) if name != scope.waives]


def prerequisite_missing(message: str, missing: str, **details: str) -> FailedPrecondition:
    """The refusal of a step whose prerequisite (a verification, a review) is missing."""
    return FailedPrecondition(message, "TIER_PREREQUISITE_MISSING", {"missing": missing, **details})
