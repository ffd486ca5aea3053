"""What the face flows (liveness, match, step-up) share: reasons from a face
assessment and a liveness decision, the request field an image error names,
match scores and what a replay recalls of them. Embedding images and
matching them through the mesh: face_matching.py."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
from collections.abc import Iterator, Sequence

from identity_runtime.errors import DomainError
from services.kyc_tier.ports import (
    Duplicate,
    FaceAssessment,
    FaceEmbedding,
    LivenessDecision,
    MatchResult,
    Reason,
)
from services.kyc_tier.reason_rows import stored_reasons, to_stored
from services.kyc_tier.records import VerificationRecord


def liveness_reasons(face: FaceAssessment, decision: LivenessDecision) -> tuple[Reason, ...]:
    """Why a capture is not a usable live face (empty when it is)."""
    reasons: list[Reason] = []
    if not face.face_found:
        reasons.append(Reason("FACE_NOT_FOUND", "no face in the capture"))
    elif not face.passed:
        reasons.append(Reason("QUALITY_FAILED", "the capture does not meet the quality profile"))
        reasons.extend(face.reasons)
    if not decision.live:
        seen = {r.code for r in reasons}
        reasons.extend(
            r
            for r in decision.reasons
            or (Reason("LIVENESS_FAILED", "the capture is not judged live"),)
            if r.code not in seen
        )
    return tuple(reasons)


_SENT_FIELD = re.compile(
    r"(frames|pad_crops|card_image|flash_frames)(?:\[(\d+)\])?(?:\.(?:image|data))*"
)


def api_field(sent_field: str, frames_field: str) -> str | None:
    """What the partner calls a field of the images the flow sent downstream
    (capture-quality's `frames[i].data` and `card_image`, liveness's
    `frames`, `pad_crops` and `attestation.*`), when the images came from
    `frames_field`: `bundle.frames` (a capture bundle's frames), a single
    image field such as `probe_image`, or the request field that named
    stored frames (`liveness_verification_id`)."""
    if sent_field.startswith("attestation.") and frames_field == "bundle.frames":
        return f"bundle.{sent_field}"
    found = _SENT_FIELD.fullmatch(sent_field)
    if found is None:
        return None
    sent, index = found.group(1), found.group(2)
    if sent == "card_image":
        index = "0"  # the card is the bundle's first frame
    elif sent == "flash_frames" and index is not None:
        index = str(int(index) + 1)  # ... and the flash frames follow it
    if frames_field != "bundle.frames":
        if frames_field.endswith("_image") and sent_field.endswith(".data"):
            return f"{frames_field}.data"
        return frames_field
    if index is None or sent == "pad_crops":
        return frames_field
    return f"{frames_field}[{index}].image" + (".data" if sent_field.endswith(".data") else "")


@contextlib.contextmanager
def images_from(frames_field: str) -> Iterator[None]:
    """Errors of capture-quality or liveness about the images they were sent,
    renamed to the request field the images came from: a partner is never
    told about a field it did not send (e.g. liveness's `pad_crops`)."""
    try:
        yield
    except DomainError as error:
        sent = error.metadata.get("field", "")
        renamed = api_field(sent, frames_field) if sent else None
        if renamed is not None:
            named_inside = not error.message.startswith(f"{sent}:") and sent in error.message
            error.rename_field(renamed)
            if named_inside:
                error.message = error.message.replace(sent, renamed)
                error.args = (error.message,)
        raise


FACE_CHANGED = Reason(
    "FACE_CHANGED_BETWEEN_FRAMES", "the flash frames show another person than the frame judged"
)


def tied(decision: LivenessDecision, frames: MatchResult | None) -> LivenessDecision:
    """The liveness decision, not live when a flash frame shows another person
    than the baseline: the flash proves only that the face which answered it
    is live, and PAD and matching judge the baseline's (an injected capture
    can put the enrolled customer on one and someone else on the others)."""
    if frames is None or frames.match or not decision.live:
        return decision
    return dataclasses.replace(decision, live=False, reasons=(*decision.reasons, FACE_CHANGED))


def frames_scores(frames: MatchResult | None) -> dict[str, float]:
    """The witness frame's score against the baseline's face, when compared."""
    if frames is None:
        return {}
    return {
        "frames_match": frames.score,
        "frames_match_threshold": frames.threshold,
        "frames_match_false_match_rate": frames.estimated_false_match_rate,
    }


def liveness_scores(decision: LivenessDecision) -> dict[str, float]:
    scores = {"pad": decision.pad_score, "flash": decision.flash_score}
    if decision.pad_threshold:
        scores["pad_threshold"] = decision.pad_threshold
    return scores


def quality_scores(face: FaceAssessment) -> dict[str, float]:
    """The best frame's capture-quality measures, for the verification record."""
    return {f"quality_{name}": value for name, value in face.quality.items()}


def capture_details(face: FaceAssessment, decision: LivenessDecision) -> dict[str, object]:
    """What a face capture's verification keeps so that a replay answers as the
    original did (codes and flags only)."""
    return {
        "live": decision.live,
        "face_found": face.face_found,
        "face_passed": face.passed,
        "best_frame_index": face.best_frame_index,
        "quality_reasons": to_stored(face.reasons),
    }


def recall_face(seen: VerificationRecord) -> FaceAssessment:
    """The face assessment a recorded capture stands for (no crops)."""
    details = seen.details
    return FaceAssessment(
        passed=bool(details.get("face_passed", seen.outcome == "passed")),
        reasons=stored_reasons(details.get("quality_reasons", ())),
        face_found=bool(details.get("face_found", True)),
        best_frame_index=int(details.get("best_frame_index", 0)),
        detector_model=seen.models.get("detector", ""),
    )


def recall_liveness(seen: VerificationRecord) -> LivenessDecision:
    """The liveness decision a recorded capture stands for."""
    return LivenessDecision(
        live=bool(seen.details.get("live", seen.outcome == "passed")),
        pad_score=seen.scores.get("pad", 0.0),
        flash_score=seen.scores.get("flash", 0.0),
        reasons=(),
        decision_basis=seen.models.get("decision_basis", ""),
    )


def _recalled_comparison(
    seen: VerificationRecord, name: str, mismatch_code: str, rate_key: str
) -> MatchResult | None:
    """A comparison the verification recorded (scores `name` and `name_threshold`),
    a match unless its reasons name `mismatch_code`; None when it has none."""
    if name not in seen.scores:
        return None
    return MatchResult(
        score=seen.scores[name],
        threshold=seen.scores.get(f"{name}_threshold", 0.0),
        match=not any(r.code == mismatch_code for r in seen.reasons),
        estimated_false_match_rate=seen.scores.get(rate_key, 1.0),
    )


def recall_match(seen: VerificationRecord) -> MatchResult | None:
    """The match a recorded verification stands for (None when it has none)."""
    match = _recalled_comparison(seen, "match", "FACE_MISMATCH", "estimated_false_match_rate")
    if match is None:
        return None
    return dataclasses.replace(match, enrollment_id=str(seen.details.get("enrollment_id", "")))


def recall_frames(seen: VerificationRecord) -> MatchResult | None:
    """The flash frame's comparison with the baseline a verification recorded."""
    return _recalled_comparison(
        seen, "frames_match", FACE_CHANGED.code, "frames_match_false_match_rate"
    )


def recall_probe(seen: VerificationRecord) -> FaceEmbedding | None:
    model_id = seen.models.get("embedding")
    return FaceEmbedding(model_id, 0, None) if model_id else None


def duplicate_review(duplicates: Sequence[Duplicate], enrollment_id: str) -> dict[str, object]:
    """What a duplicate face's review item records, as for a KTP card: the
    other customers (ids only) and the reference matching holds for it."""
    others = [d.customer_id for d in duplicates]
    return {"duplicate_customers": others, "enrollment_id": enrollment_id} if others else {}


def recall_duplicates(seen: VerificationRecord) -> tuple[Duplicate, ...]:
    """The duplicates a held capture named (scores are not kept)."""
    return tuple(Duplicate(c, 0.0) for c in seen.details.get("duplicate_customers", ()))


def match_scores(match: MatchResult) -> dict[str, float]:
    return {
        "match": match.score,
        "match_threshold": match.threshold,
        "estimated_false_match_rate": match.estimated_false_match_rate,
    }


def image_hashes(**images: bytes) -> dict[str, str]:
    """SHA-256 of each image given (empty ones left out), for the verification row."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in images.items() if data}


ENROLLED_REFERENCE, PARTNER_REFERENCE = "enrolled", "partner_image"  # details.reference


def reference_kind(reference_image: bytes) -> str:
    return PARTNER_REFERENCE if reference_image else ENROLLED_REFERENCE
