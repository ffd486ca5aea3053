"""The tier ladder exactly as in the product brief."""

from __future__ import annotations

from services.kyc_tier import tiers
from services.kyc_tier.tiers import Evidence


def ev(kind: str, passed: bool = True, vid: str = "", **kw: object) -> Evidence:
    return Evidence(verification_id=vid or f"ver_{kind}", kind=kind, passed=passed, **kw)  # type: ignore[arg-type]


def test_nothing_verified_is_none() -> None:
    status = tiers.compute([])
    assert status.tier == "none"
    assert status.next_tier == "basic"
    assert status.missing_for_next == ("valid_nik",)


def test_each_rung_needs_the_one_below() -> None:
    assert tiers.compute([ev(tiers.NIK_FORMAT)]).tier == "basic"
    # A KTP capture or a Dukcapil verdict without a valid NIK is not standard.
    assert tiers.compute([ev(tiers.KTP_CAPTURE)]).tier == "none"
    assert tiers.compute([ev(tiers.NIK_FORMAT), ev(tiers.KTP_CAPTURE)]).tier == "standard"
    assert tiers.compute([ev(tiers.NIK_FORMAT), ev(tiers.DUKCAPIL_VERDICT)]).tier == "standard"
    face = [ev(tiers.FACE_LIVENESS), ev(tiers.FACE_MATCH, against_enrolled_live=True)]
    assert tiers.compute([ev(tiers.NIK_FORMAT), *face]).tier == "basic"
    assert tiers.compute([ev(tiers.NIK_FORMAT), ev(tiers.KTP_CAPTURE), *face]).tier == "premium"


def test_premium_needs_a_live_match_against_the_enrolled_reference() -> None:
    history = [
        ev(tiers.NIK_FORMAT),
        ev(tiers.KTP_CAPTURE),
        ev(tiers.FACE_LIVENESS),
        ev(tiers.FACE_MATCH),
    ]
    status = tiers.compute(history)
    assert status.tier == "standard"
    assert status.missing_for_next == ("face_match",)


def test_failed_verifications_do_not_count_or_lower_the_tier() -> None:
    history = [
        ev(tiers.NIK_FORMAT),
        ev(tiers.KTP_CAPTURE, vid="v1"),
        ev(tiers.KTP_CAPTURE, passed=False, vid="v2"),
    ]
    status = tiers.compute(history)
    assert status.tier == "standard"
    assert {r.name: r.satisfied_by for r in status.requirements}["ktp_capture_passed"] == "v1"


def test_an_approved_review_grants_its_tier_and_erasure_resets() -> None:
    history = [ev(tiers.NIK_FORMAT), ev(tiers.MANUAL_REVIEW, granted_tier="standard")]
    assert tiers.compute(history).tier == "standard"
    assert tiers.compute(history, erased=True).tier == "none"
