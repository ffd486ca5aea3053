"""The step-up decision as a table: `step_up.decide` is a pure function of
what capture-quality, liveness and matching said. The refusals around it
(replayed nonce, no enrolled reference, a spent challenge) are the flow's,
tested in tests/integration/test_kyc_step_up.py."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from services.kyc_tier.flows import step_up_rules
from services.kyc_tier.flows.biometrics import tied
from services.kyc_tier.flows.capture import Decision
from services.kyc_tier.flows.step_up import StepUpEvidence, StepUpRequest, decide
from services.kyc_tier.ports import FaceEmbedding, LivenessDecision, MatchResult, Reason
from tests.support.kyc_fakes import GOOD_FACE, LIVE, NO_FACE, PAD_ATTACK, capture_bundle

PROBE = FaceEmbedding("fake-embedder", 4, vector=None)
MATCH = MatchResult(0.82, 0.5, True, 1e-5, "enr_1", "ktp_extract")
MISMATCH = replace(MATCH, score=0.12, match=False)
BLURRED = replace(
    GOOD_FACE, passed=False, reasons=(Reason("BLUR_TOO_HIGH", "the face is blurred"),)
)
NOT_LIVE = LivenessDecision(False, 0.4, 0.1, (), "pad+challenge")
# A flash frame's face against the baseline's: the same person, and another one.
SAME_FRAMES = MatchResult(0.97, 0.5, True, 1.0)
SWAPPED_FRAMES = MatchResult(0.12, 0.5, False, 1.0)
REQUEST = StepUpRequest("cus_1", "chl_1", capture_bundle(), action="transfer")
PARTNER_IMAGE = replace(REQUEST, reference_image=b"partner reference image")

# case id: (face, liveness, match, request, allow, reason codes)
TABLE = {
    "allow": (GOOD_FACE, LIVE, MATCH, REQUEST, True, []),
    "face mismatch": (GOOD_FACE, LIVE, MISMATCH, REQUEST, False, ["FACE_MISMATCH"]),
    "PAD attack": (GOOD_FACE, PAD_ATTACK, MATCH, REQUEST, False, ["PAD_ATTACK_SUSPECTED"]),
    "PAD attack and mismatch": (
        GOOD_FACE,
        PAD_ATTACK,
        MISMATCH,
        REQUEST,
        False,
        ["PAD_ATTACK_SUSPECTED", "FACE_MISMATCH"],
    ),
    "not live, no reason given": (GOOD_FACE, NOT_LIVE, MATCH, REQUEST, False, ["LIVENESS_FAILED"]),
    "another person on the flash frames": (
        GOOD_FACE,
        tied(LIVE, SWAPPED_FRAMES),
        MATCH,
        REQUEST,
        False,
        ["FACE_CHANGED_BETWEEN_FRAMES"],
    ),
    "quality failure": (
        BLURRED,
        LIVE,
        MATCH,
        REQUEST,
        False,
        ["QUALITY_FAILED", "BLUR_TOO_HIGH"],
    ),
    "no face, nothing to match": (NO_FACE, LIVE, None, REQUEST, False, ["FACE_NOT_FOUND"]),
    "partner reference image": (GOOD_FACE, LIVE, MATCH, PARTNER_IMAGE, True, []),
    "partner reference image, mismatch": (
        GOOD_FACE,
        LIVE,
        MISMATCH,
        PARTNER_IMAGE,
        False,
        ["FACE_MISMATCH"],
    ),
}


@pytest.mark.parametrize(
    ("face", "liveness", "match", "request_", "allow", "codes"), TABLE.values(), ids=TABLE.keys()
)
def test_step_up_decision(face, liveness, match, request_, allow, codes) -> None:
    probe = PROBE if match is not None else None
    decision = decide(StepUpEvidence(face, liveness, probe, match), request_)
    assert decision.passed is allow
    assert [r.code for r in decision.reasons] == codes


def test_the_decision_records_scores_models_and_what_was_matched() -> None:
    decision = decide(StepUpEvidence(GOOD_FACE, LIVE, PROBE, MATCH), REQUEST)
    assert decision.scores == {
        "pad": LIVE.pad_score,
        "flash": LIVE.flash_score,
        "match": MATCH.score,
        "match_threshold": MATCH.threshold,
        "estimated_false_match_rate": MATCH.estimated_false_match_rate,
    }
    assert decision.model_ids == {
        "detector": "fake-detector",
        "decision_basis": "pad+challenge",
        "embedding": "fake-embedder",
    }
    # ... and what a replay of the same bundle answers with (codes and flags only).
    assert decision.details == {
        "action": "transfer",
        "reference": "enrolled",
        "live": True,
        "face_found": True,
        "face_passed": True,
        "best_frame_index": 0,
        "quality_reasons": [],
    }
    # The audit entry names the reference too (probe5 finding 1).
    assert decision.audit_details == {"action": "transfer", "reference_source": "enrolled"}
    assert decision.input_hashes == {}


def test_a_partner_reference_image_is_hashed_and_named_in_the_record() -> None:
    decision = decide(StepUpEvidence(GOOD_FACE, LIVE, PROBE, MATCH), PARTNER_IMAGE)
    assert decision.details["reference"] == "partner_image"
    assert decision.audit_details["reference_source"] == "partner_image"
    assert decision.input_hashes == {
        "reference_image": hashlib.sha256(b"partner reference image").hexdigest()
    }


IMAGE_SHA256 = hashlib.sha256(b"partner reference image").hexdigest()
# case id: (what the verification recorded, the reference a replay is answered for)
RECORDED_REFERENCES = {
    "enrolled": (Decision(True, details={"reference": "enrolled"}), "enrolled"),
    "partner image": (
        Decision(
            True,
            details={"reference": "partner_image"},
            input_hashes={"bundle": "b" * 64, "reference_image": IMAGE_SHA256},
        ),
        IMAGE_SHA256,
    ),
    # Not recorded as this release records it: no replay is answered.
    "partner image without its digest": (
        Decision(True, details={"reference": "partner_image"}),
        None,
    ),
    "reference not recorded": (Decision(True, details={"action": "transfer"}), None),
}


@pytest.mark.parametrize(
    ("recorded", "reference"), RECORDED_REFERENCES.values(), ids=RECORDED_REFERENCES.keys()
)
def test_a_replay_is_answered_only_for_the_reference_recorded(recorded, reference) -> None:
    """Probe5 finding 2: the reference is not in the bundle's digest, so a
    replay compares the request's reference with the recorded one."""
    assert step_up_rules.decided_reference(recorded) == reference
    assert step_up_rules.reference_of(REQUEST.reference_image) == "enrolled"
    assert step_up_rules.reference_of(PARTNER_IMAGE.reference_image) == IMAGE_SHA256


def test_without_a_face_no_match_scores_are_recorded() -> None:
    decision = decide(StepUpEvidence(NO_FACE, LIVE, None, None), REQUEST)
    assert set(decision.scores) == {"pad", "flash"}
    assert "embedding" not in decision.model_ids


def test_the_flash_frames_face_is_tied_to_the_baselines() -> None:
    """Not live when a flash frame shows another person; unchanged otherwise
    (a capture already refused keeps its own reasons)."""
    assert tied(LIVE, None) is LIVE and tied(LIVE, SAME_FRAMES) is LIVE
    assert tied(PAD_ATTACK, SWAPPED_FRAMES) is PAD_ATTACK
    swapped = tied(LIVE, SWAPPED_FRAMES)
    assert not swapped.live and swapped.pad_score == LIVE.pad_score
    evidence = StepUpEvidence(GOOD_FACE, swapped, PROBE, MATCH, SWAPPED_FRAMES)
    decision = decide(evidence, REQUEST)
    assert (decision.scores["frames_match"], decision.scores["frames_match_threshold"]) == (
        0.12,
        0.5,
    )
    assert decision.details["live"] is False


def test_capture_quality_and_the_pad_threshold_are_recorded_for_the_timeline() -> None:
    measured = replace(GOOD_FACE, quality={"blur_laplacian_var": 312.5, "yaw_deg": -3.0})
    pinned = replace(LIVE, pad_threshold=0.6)
    decision = decide(StepUpEvidence(measured, pinned, PROBE, MATCH), REQUEST)
    assert decision.scores["quality_blur_laplacian_var"] == 312.5
    assert decision.scores["quality_yaw_deg"] == -3.0
    assert decision.scores["pad_threshold"] == 0.6
    assert decision.scores["pad"] == LIVE.pad_score
