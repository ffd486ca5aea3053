"""What the face flows (liveness, match, step-up) share: reasons from a face
assessment and a liveness decision, match scores, embedding an image, and
matching a probe against the enrolled or a partner's reference."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from identity_runtime.errors import FailedPrecondition
from services.kyc_tier.ports import (
    CaptureQuality,
    Embedder,
    FaceAssessment,
    FaceEmbedding,
    LivenessDecision,
    Matcher,
    MatchResult,
    Reason,
)


def liveness_reasons(face: FaceAssessment, decision: LivenessDecision) -> tuple[Reason, ...]:
    """Why a capture is not a usable live face (empty when it is)."""
    reasons: list[Reason] = []
    if not face.face_found:
        reasons.append(Reason("FACE_NOT_FOUND", "no face in the capture"))
    elif not face.passed:
        reasons.append(Reason("QUALITY_FAILED", "the capture does not meet the quality profile"))
        reasons.extend(face.reasons)
    if not decision.live:
        reasons.extend(
            decision.reasons or (Reason("LIVENESS_FAILED", "the capture is not judged live"),)
        )
    return tuple(reasons)


def liveness_scores(decision: LivenessDecision) -> dict[str, float]:
    return {"pad": decision.pad_score, "flash": decision.flash_score}


def match_scores(match: MatchResult) -> dict[str, float]:
    return {
        "match": match.score,
        "match_threshold": match.threshold,
        "estimated_false_match_rate": match.estimated_false_match_rate,
    }


def image_hashes(**images: bytes) -> dict[str, str]:
    """SHA-256 of each image given (empty ones left out), for the verification row."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in images.items() if data}


def reference_kind(reference_image: bytes) -> str:
    return "partner_image" if reference_image else "enrolled"


@dataclass
class FaceMatching:
    """Turns images into embeddings and compares them, through the mesh."""

    quality: CaptureQuality
    embedder: Embedder
    matcher: Matcher

    async def embed_images(
        self, frames: Sequence[bytes], kind: str, baseline: Sequence[bool] = ()
    ) -> FaceEmbedding:
        face = await self.quality.assess_face(frames, kind, (), baseline)
        if face.crops is None:
            raise FailedPrecondition("no usable face was found in the image", "FACE_NOT_FOUND")
        return await self.embedder.embed(face.crops)

    async def verify(
        self,
        customer_id: str,
        probe: FaceEmbedding,
        reference_image: bytes,
        threshold: float | None,
    ) -> MatchResult:
        """The probe against a partner's reference image, or else the enrolled reference."""
        if reference_image:
            reference = await self.embed_images([reference_image], "reference")
            return await self.matcher.verify_reference(probe, reference, threshold=threshold)
        return await self.matcher.verify_enrolled(customer_id, probe, threshold=threshold)

    async def has_active_enrollment(self, customer_id: str) -> bool:
        enrollments = await self.matcher.list_enrollments(customer_id, include_retired=False)
        return any(e.active for e in enrollments)
