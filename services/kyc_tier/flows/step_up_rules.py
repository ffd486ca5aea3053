"""What step-up asks beyond the capture pipeline: who may choose the reference
the live face is matched against, and which request a replay answers.

A partner reference image comes from the partner's backend: a capture SDK
session (the customer's browser) sending one is refused before anything is
written (PERMISSION_DENIED / REFERENCE_IMAGE_FORBIDDEN), or the browser could
pass step-up with any face as its own reference (probe5 finding 1).

Neither `action` nor the reference is in the bundle's digest, so a replay is
answered only for the action it was decided for (probe4 finding 6) and the
reference it was matched against: the enrolled one, or a partner image of
the same SHA-256 (probe5 finding 2); for another it is refused.
"""

from __future__ import annotations

from identity_runtime import context
from identity_runtime.errors import AlreadyExists, PermissionDenied
from services.kyc_tier.flows import biometrics
from services.kyc_tier.flows.capture import Decision

# The actor of a call made with a capture SDK session token (gateway/sdk_access.py).
SDK_SESSION_ACTOR = f"{context.SDK_SESSION_KIND}:"


class ReplayedForOtherAction(AlreadyExists, reason="STEP_UP_REPLAYED_FOR_OTHER_ACTION"): ...


class ReferenceImageForbidden(PermissionDenied, reason="REFERENCE_IMAGE_FORBIDDEN"): ...


class ReplayedForOtherReference(AlreadyExists, reason="STEP_UP_REPLAYED_FOR_OTHER_REFERENCE"): ...


def refuse_reference_from_sdk_session(reference_image: bytes) -> None:
    """A capture SDK session never supplies the reference it is matched against."""
    if reference_image and context.actor().startswith(SDK_SESSION_ACTOR):
        raise ReferenceImageForbidden(
            "a partner reference image is sent by the partner's backend, "
            "never by a capture SDK session",
            metadata={"field": "reference_image"},
        )


def reference_of(reference_image: bytes) -> str:
    """What a request is matched against: the enrolled reference, or the
    partner image's SHA-256 (as the verification's input hashes record it)."""
    if not reference_image:
        return biometrics.ENROLLED_REFERENCE
    return biometrics.image_hashes(reference_image=reference_image)["reference_image"]


def decided_reference(decision: Decision) -> str | None:
    """What a recorded decision was matched against (`reference_of`'s terms);
    None when the record does not say (a partner image without its digest):
    its replay is then refused."""
    kind = decision.details.get("reference")
    if kind == biometrics.ENROLLED_REFERENCE:
        return biometrics.ENROLLED_REFERENCE
    if kind == biometrics.PARTNER_REFERENCE:
        return decision.input_hashes.get("reference_image")
    return None


def replay_refusal(decided: Decision, action: str, reference_image: bytes) -> AlreadyExists | None:
    """Why a replay of `decided` does not answer this request (None: it does)."""
    if decided.details.get("action", "") != action:
        return ReplayedForOtherAction(
            "this bundle was already answered for another action; "
            "capture a new step-up for this one"
        )
    if decided_reference(decided) != reference_of(reference_image):
        return ReplayedForOtherReference(
            "this bundle was already answered against another reference; "
            "capture a new step-up for this one"
        )
    return None
