"""Faces through the mesh, for the face flows (liveness, match, step-up,
Dukcapil): an image's face embedded (refused when it shows none or several),
a capture's probe, and a probe matched against the enrolled reference or a
partner's reference image."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from identity_runtime.errors import FailedPrecondition, InvalidArgument
from services.kyc_tier.flows.biometrics import images_from
from services.kyc_tier.ports import (
    CapturedFrames,
    CaptureQuality,
    Embedder,
    FaceAssessment,
    FaceEmbedding,
    Matcher,
    MatchResult,
)


@dataclass
class FaceMatching:
    """Turns images into embeddings and compares them, through the mesh."""

    quality: CaptureQuality
    embedder: Embedder
    matcher: Matcher

    async def embed_images(
        self,
        frames: Sequence[bytes],
        kind: str,
        baseline: Sequence[bool] = (),
        frames_field: str = "bundle.frames",
    ) -> FaceEmbedding:
        with images_from(frames_field):
            face = await self.quality.assess_face(CapturedFrames(frames, baseline=baseline), kind)
        if face.crops is None:
            raise FailedPrecondition(
                f"{frames_field}: no usable face was found in the image",
                "FACE_NOT_FOUND",
                {"field": frames_field},
            )
        if any(r.code == "MULTIPLE_FACES" for r in face.reasons):  # which? (probe5 P5-11)
            raise InvalidArgument(
                f"{frames_field}: several faces", "IMAGE_MULTIPLE_FACES", {"field": frames_field}
            )
        return await self.embedder.embed(face.crops)

    async def embed_capture(self, face: FaceAssessment) -> tuple[FaceEmbedding, MatchResult | None]:
        """The judged face's embedding (the probe) and, for a capture of several
        frames, whether another frame's face (capture-quality's witness) is the
        same person, at the deployment's default threshold: the organisation's
        trades its customers' convenience against risk, but one capture's
        frames must agree at the calibrated bar (genuine flash frames score
        0.93 or more, other people 0.36 at most: tools/bench/frame_consistency.py)."""
        if face.crops is None:
            raise ValueError("a face assessment without crops has nothing to embed")
        if face.witness is None:
            return await self.embedder.embed(face.crops), None
        probe, witness = await asyncio.gather(
            self.embedder.embed(face.crops), self.embedder.embed(face.witness)
        )
        return probe, await self.matcher.verify_reference(witness, probe, capture_frame=True)

    async def reference(self, reference_image: bytes) -> FaceEmbedding | None:
        """A partner's reference image's embedding; None without one."""
        if not reference_image:
            return None
        return await self.embed_images(
            [reference_image], "reference", frames_field="reference_image"
        )

    async def verify(
        self,
        customer_id: str,
        probe: FaceEmbedding,
        reference: FaceEmbedding | None,
        threshold: float | None,
    ) -> MatchResult:
        """The probe against a partner's reference (`reference`), or else the enrolled one."""
        if reference is not None:
            return await self.matcher.verify_reference(probe, reference, threshold=threshold)
        return await self.matcher.verify_enrolled(customer_id, probe, threshold=threshold)

    async def has_active_enrollment(self, customer_id: str) -> bool:
        enrollments = await self.matcher.list_enrollments(customer_id, include_retired=False)
        return any(e.active for e in enrollments)
