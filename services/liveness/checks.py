"""The liveness domain: challenges, devices, and the atomic CheckLiveness.

CheckLiveness runs in three steps so that a refusal writes nothing and the
database lock is never held while models run:

1. read-only: bundle hash, device, signature, capture time, nonce and
   challenge are checked; any violation is an error and consumes nothing;
2. PAD and flash response are computed (no database);
3. one transaction consumes the challenge (conditional UPDATE ... WHERE
   consumed_at IS NULL) and records the nonce (primary key; a nonce past
   its retention whose row the sweep has not purged yet: conditional UPDATE
   ... WHERE expired), so two concurrent calls with the same challenge or
   nonce cannot both pass; a lost race is refused with the same reason as
   step 1 and rolls back.

A biometric failure (PAD, flash) is not an error: it is a decision with
reasons, and it still consumes the challenge and the nonce.

The organisation is the one the call carries: liveness keeps no
organisation records (kyc-tier owns them) and reads no other service's tables.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity_capture import signatures
from identity_capture.policy import DEFAULT_LIVENESS_POLICY, LivenessPolicy
from identity_inference.pad import PadResult, PadScorer
from identity_ktp import flash as card_flash
from identity_runtime import metrics
from identity_runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    invalid_field,
)
from identity_store.db import Database
from services.liveness import flash
from services.liveness.devices import (
    DeviceRecord,
    device_not_found,
    device_record,
    require_customer_id,
    require_device_id,
    revoked,
)
from services.liveness.models import Challenge, Device, UsedNonce
from services.liveness.policy import PadPolicies

PURPOSES = ("ktp_capture", "face_liveness", "step_up")
CARD_PURPOSE = "ktp_capture"
BASIS_PAD = "pad+challenge"
BASIS_CHALLENGE_ONLY = "challenge-only"
BASIS_CARD_FLASH = "card-flash"
BASIS_DEVICE = "device-attestation"
# The organisation's policy switched the flash check off: PAD and the device.
BASIS_PAD_ONLY = "pad+attestation"


@dataclass(frozen=True)
class ChallengePolicy:
    ttl_seconds: int = 120
    length: int = 4
    flash_duration_ms: int = 400
    nonce_retention_hours: int = 24
    max_clock_skew_seconds: int = 300
    min_flash_response: float = 0.004
    min_flash_score: float = 0.75
    # A KTP card must answer the flash (a screen barely does); off only while
    # SDKs that capture one card frame are retired.
    card_flash_required: bool = True
    min_card_flash_response: float = card_flash.MIN_RESPONSE


@dataclass(frozen=True)
class IssuedChallenge:
    challenge_id: str
    purpose: str
    sequence: list[str]
    flash_duration_ms: int
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class LivenessRequest:
    customer_id: str
    purpose: str
    challenge_id: str
    device_id: str
    nonce: str
    bundle_sha256: str
    signature: bytes
    captured_at: datetime | None
    computed_bundle_sha256: str
    # crop scale -> 80x80 BGR8 crop
    pad_crops: dict[float, np.ndarray]
    frames: list[flash.FrameColour]
    # The organisation's switches (kyc-tier's), for this call only.
    policy: LivenessPolicy = DEFAULT_LIVENESS_POLICY
    # Re-decide this very bundle if it was accepted already (kyc-tier resuming
    # a cut-short capture): nothing is consumed again.
    resume: bool = False
    # The capture's unflashed baseline frame shows no face: the face that
    # answered the flash is not the one PAD and matching are given.
    baseline_without_face: bool = False


@dataclass(frozen=True)
class LivenessDecision:
    live: bool
    pad: PadResult | None
    flash_score: float
    reasons: list[tuple[str, str]]
    decision_basis: str
    device_id: str


@dataclass(frozen=True)
class _Checked:
    sequence: list[str]
    flash_duration_ms: int
    # The bundle was accepted before: decide again, consume nothing.
    resumed: bool = False
    # The nonce's row is there but expired (it is replaced, not added).
    nonce_expired: bool = False


def _utcnow() -> datetime:
    return datetime.now(UTC)


# New devices (signing keys) a customer may register in a day: each can sign
# that customer's bundles, and one SDK token could otherwise register any
# number. A rate, not a cap on every device: revoking one (a lost phone) must
# not be what frees a slot, and a cap would lock out for good a customer who
# reached it (ten cleared browsers, or a stolen token).
MAX_NEW_DEVICES_PER_DAY = 10
NEW_DEVICE_WINDOW = timedelta(days=1)


def _serialise_customer_devices(session: Session, org_id: str, customer_id: str) -> None:
    """On PostgreSQL, one registration per customer at a time (until commit),
    so two concurrent ones cannot both pass the device limit; SQLite
    serialises writers itself."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"liveness.devices:{org_id}:{customer_id}"},
        )


@dataclass
class Liveness:
    database: Database
    pad: PadScorer | None
    policy: ChallengePolicy = field(default_factory=ChallengePolicy)
    max_new_devices_per_day: int = MAX_NEW_DEVICES_PER_DAY
    clock: Callable[[], datetime] = _utcnow
    # Candidate PAD models scored in shadow: reported, never deciding.
    shadow: PadScorer | None = None
    # The live models plus those organisations may be pinned to.
    policies: PadPolicies | None = None

    def __post_init__(self) -> None:
        if self.policies is None:
            self.policies = PadPolicies(self.pad)

    def scorer(self, policy: LivenessPolicy) -> PadScorer | None:
        assert self.policies is not None
        return self.policies.scorer(policy)

    @property
    def decision_basis(self) -> str:
        return BASIS_PAD if self.pad is not None else BASIS_CHALLENGE_ONLY

    # --- IssueChallenge ------------------------------------------------------

    async def issue_challenge(self, org_id: str, customer_id: str, purpose: str) -> IssuedChallenge:
        require_customer_id(customer_id)
        if purpose not in PURPOSES:
            raise invalid_field("purpose", "required")
        now = self.clock()
        issued = IssuedChallenge(
            challenge_id=f"chl_{uuid.uuid4().hex}",
            purpose=purpose,
            sequence=flash.random_sequence(self.policy.length),
            flash_duration_ms=self.policy.flash_duration_ms,
            issued_at=now,
            expires_at=now + timedelta(seconds=self.policy.ttl_seconds),
        )

        def store(session: Session) -> None:
            session.add(
                Challenge(
                    challenge_id=issued.challenge_id,
                    org_id=org_id,
                    customer_id=customer_id,
                    purpose=purpose,
                    sequence=issued.sequence,
                    flash_duration_ms=issued.flash_duration_ms,
                    issued_at=issued.issued_at,
                    expires_at=issued.expires_at,
                )
            )

        await self.database.run(store)
        return issued

    # --- RegisterDevice ------------------------------------------------------

    async def register_device(
        self,
        org_id: str,
        device_id: str,
        customer_id: str,
        algorithm: str,
        public_key: bytes,
        platform: str,
    ) -> tuple[DeviceRecord, bool]:
        require_device_id(device_id)
        require_customer_id(customer_id)
        if platform not in ("", "android", "ios", "web"):
            raise invalid_field("platform", "one of android, ios, web")
        try:
            der = signatures.load_public_key(algorithm, public_key)
        except signatures.UnusableKey as exc:
            raise invalid_field("public_key", str(exc)) from None
        key_fingerprint = signatures.fingerprint(der)

        def store(session: Session) -> tuple[DeviceRecord, bool]:
            existing = session.scalars(
                sa.select(Device).where(Device.org_id == org_id, Device.device_id == device_id)
            ).first()
            if existing is not None:
                if existing.revoked_at is not None and existing.customer_id == customer_id:
                    # Revoked for good: a new installation has a new id.
                    raise revoked(device_id)
                same = (
                    existing.key_fingerprint == key_fingerprint
                    and existing.customer_id == customer_id
                )
                if same:
                    return device_record(existing), False
                raise AlreadyExists(
                    "the device id is already registered with a different key or customer",
                    "DEVICE_ALREADY_REGISTERED",
                    {"device_id": device_id},
                )
            _serialise_customer_devices(session, org_id, customer_id)
            now = self.clock()
            recent = session.scalars(
                sa.select(Device.registered_at).where(
                    Device.org_id == org_id,
                    Device.customer_id == customer_id,
                    Device.registered_at > now - NEW_DEVICE_WINDOW,
                )
            ).all()
            limit = self.max_new_devices_per_day
            if len(recent) >= limit:
                # When the oldest of them leaves the window.
                wait = min(recent) + NEW_DEVICE_WINDOW - now
                raise FailedPrecondition(
                    f"the customer registered {limit} new devices in the last 24 hours, "
                    "the most allowed; use a device registered before, or retry later",
                    "DEVICE_LIMIT_REACHED",
                    {
                        "max_devices": str(limit),
                        "retry_after_seconds": str(max(1, math.ceil(wait.total_seconds()))),
                    },
                )
            row = Device(
                org_id=org_id,
                device_id=device_id,
                customer_id=customer_id,
                algorithm=algorithm,
                public_key_der=der,
                key_fingerprint=key_fingerprint,
                platform=platform,
                registered_at=now,
            )
            session.add(row)
            session.flush()
            return device_record(row), True

        try:
            return await self.database.run(store)
        except IntegrityError:
            # A concurrent registration of the same id won the race.
            raise AlreadyExists(
                "the device id is already registered",
                "DEVICE_ALREADY_REGISTERED",
                {"device_id": device_id},
            ) from None

    # --- CheckLiveness -------------------------------------------------------

    def _validate(self, request: LivenessRequest) -> None:
        self._validate_attestation(request)
        if request.purpose == CARD_PURPOSE:
            # A card capture is checked for its device attestation, nonce and
            # challenge; face PAD does not apply and the card's anti-spoof
            # signals come from capture-quality.
            return
        self._validate_evidence(request)

    @staticmethod
    def _validate_attestation(request: LivenessRequest) -> None:
        if not request.customer_id:
            raise invalid_field("customer_id", "required")
        if request.purpose not in PURPOSES:
            raise invalid_field("purpose", "required")
        if not request.challenge_id:
            raise invalid_field("challenge_id", "required")
        if not request.device_id:
            raise invalid_field("attestation.device_id", "required")
        if not request.nonce or len(request.nonce) > 128:
            raise invalid_field("attestation.nonce", "required, at most 128 characters")
        if len(request.bundle_sha256) != 64:
            raise invalid_field("attestation.bundle_sha256", "64 hex digits")
        if not request.signature:
            raise invalid_field("attestation.signature", "required")
        if request.captured_at is None:
            raise invalid_field("attestation.captured_at", "required")
        if request.computed_bundle_sha256.lower() != request.bundle_sha256.lower():
            raise InvalidArgument(
                "the bundle's declared hash does not match its content",
                "BUNDLE_HASH_MISMATCH",
                {"field": "attestation.bundle_sha256"},
            )

    def _validate_evidence(self, request: LivenessRequest) -> None:
        scorer = self.scorer(request.policy)
        if not request.frames and request.policy.flash_check:
            raise invalid_field("frames", "per-frame colour evidence is required")
        # No crops at all: capture-quality found no face; decided not live
        # (FACE_NOT_FOUND), never refused as a malformed request.
        if scorer is not None and request.pad_crops:
            missing = [
                s
                for s in (spec.scale for spec in scorer.specs)
                if not any(abs(s - k) < 1e-3 for k in request.pad_crops)
            ]
            if missing:
                raise invalid_field("pad_crops", f"a crop at scale {missing[0]:g} is required")

    def _check_protocol(
        self, session: Session, org_id: str, request: LivenessRequest, now: datetime
    ) -> _Checked:
        device = session.scalars(
            sa.select(Device).where(Device.org_id == org_id, Device.device_id == request.device_id)
        ).first()
        if device is None or device.customer_id != request.customer_id:
            raise device_not_found(request.device_id)
        if device.revoked_at is not None:
            # Whatever it signed: the key may be in a thief's hands.
            raise revoked(request.device_id)
        if not signatures.verify(
            device.algorithm,
            device.public_key_der,
            request.bundle_sha256.lower(),
            request.signature,
        ):
            raise PermissionDenied(
                "the bundle signature does not verify under the registered device key",
                "BUNDLE_SIGNATURE_INVALID",
            )
        skew = timedelta(seconds=self.policy.max_clock_skew_seconds)
        assert request.captured_at is not None
        if abs(request.captured_at - now) > skew:
            raise FailedPrecondition(
                "the bundle's capture time is outside the accepted clock skew",
                "BUNDLE_STALE",
                {"max_skew_seconds": self.policy.max_clock_skew_seconds},
            )
        seen = session.get(UsedNonce, (org_id, request.device_id, request.nonce))
        if seen is not None and seen.expires_at > now:
            same = seen.bundle_sha256 == request.bundle_sha256.lower()
            if same and request.resume:
                resumed = self._resumed_challenge(session, org_id, request)
                if resumed is not None:
                    return resumed
            raise AlreadyExists(
                "this bundle was already submitted (replay)"
                if same
                else "the nonce was already used by another bundle",
                "NONCE_REPLAYED",
            )
        challenge = session.scalars(
            sa.select(Challenge).where(
                Challenge.org_id == org_id, Challenge.challenge_id == request.challenge_id
            )
        ).first()
        if challenge is None:
            raise NotFound(
                "no such challenge", "CHALLENGE_NOT_FOUND", {"challenge_id": request.challenge_id}
            )
        if challenge.customer_id != request.customer_id or challenge.purpose != request.purpose:
            raise PermissionDenied(
                "the challenge was issued for another customer or purpose", "CHALLENGE_MISMATCH"
            )
        if challenge.consumed_at is not None:
            raise FailedPrecondition(
                "the challenge was already used by an earlier capture", "CHALLENGE_ALREADY_USED"
            )
        if challenge.expires_at <= now:
            raise FailedPrecondition("the challenge has expired", "CHALLENGE_EXPIRED")
        return _Checked(
            list(challenge.sequence),
            int(challenge.flash_duration_ms),
            nonce_expired=seen is not None,
        )

    @staticmethod
    def _resumed_challenge(
        session: Session, org_id: str, request: LivenessRequest
    ) -> _Checked | None:
        """The challenge this very bundle spent (a resumed capture), if it did."""
        challenge = session.scalars(
            sa.select(Challenge).where(
                Challenge.org_id == org_id, Challenge.challenge_id == request.challenge_id
            )
        ).first()
        if (
            challenge is None
            or challenge.consumed_nonce != request.nonce
            or (challenge.customer_id, challenge.purpose) != (request.customer_id, request.purpose)
        ):
            return None
        return _Checked(list(challenge.sequence), int(challenge.flash_duration_ms), resumed=True)

    def _consume(
        self,
        session: Session,
        org_id: str,
        request: LivenessRequest,
        checked: _Checked,
        now: datetime,
    ) -> None:
        updated = session.execute(
            sa.update(Challenge)
            .where(
                Challenge.org_id == org_id,
                Challenge.challenge_id == request.challenge_id,
                Challenge.consumed_at.is_(None),
            )
            .values(consumed_at=now, consumed_nonce=request.nonce)
        )
        # An UPDATE answers with a CursorResult, which has the row count.
        if cast("sa.CursorResult[Any]", updated).rowcount != 1:
            raise FailedPrecondition(
                "the challenge was already used by an earlier capture", "CHALLENGE_ALREADY_USED"
            )
        values = {
            "bundle_sha256": request.bundle_sha256.lower(),
            "seen_at": now,
            "expires_at": now + timedelta(hours=self.policy.nonce_retention_hours),
        }
        if not checked.nonce_expired:
            # A new nonce: the primary key refuses a concurrent second use.
            session.add(
                UsedNonce(org_id=org_id, device_id=request.device_id, nonce=request.nonce, **values)
            )
            session.flush()
            return
        # The nonce's expired row (other expired nonces are the retention
        # sweep's): replaced only while still expired, so that of two
        # concurrent reuses one is refused.
        replaced = session.execute(
            sa.update(UsedNonce)
            .where(
                UsedNonce.org_id == org_id,
                UsedNonce.device_id == request.device_id,
                UsedNonce.nonce == request.nonce,
                UsedNonce.expires_at <= now,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if cast("sa.CursorResult[Any]", replaced).rowcount != 1:
            raise AlreadyExists("the nonce was already used by another bundle", "NONCE_REPLAYED")

    def decide(self, checked: _Checked, request: LivenessRequest) -> LivenessDecision:
        """The biometric part: PAD on the crops and the flash response."""
        if request.purpose == CARD_PURPOSE:
            return self._decide_card(checked, request)
        reasons: list[tuple[str, str]] = []
        pad_result = None
        scorer = self.scorer(request.policy)
        face_missing = scorer is not None and not request.pad_crops
        if face_missing:
            reasons.append(("FACE_NOT_FOUND", "no face to run presentation-attack detection on"))
        elif scorer is None:
            reasons.append(
                (
                    "PAD_MODEL_NOT_CONFIGURED",
                    "no PAD model on this deployment: decided on the flash challenge alone",
                )
            )
        else:
            crops = {spec.scale: _crop_for(request.pad_crops, spec.scale) for spec in scorer.specs}
            pad_result = scorer.score(crops)
            if self.shadow is not None and request.policy.shadow:
                shadow_compare(self.shadow, pad_result, request.pad_crops)
            if not pad_result.live:
                reasons.append(
                    (
                        "PAD_ATTACK_SUSPECTED",
                        f"fused PAD live score {pad_result.fused_live_score:.3f} "
                        f"below {pad_result.threshold:.2f}",
                    )
                )
        flash_passed, flash_score, basis = True, 0.0, BASIS_PAD_ONLY
        if request.policy.flash_check:
            flash_result = (
                flash.FlashResult(
                    0.0, [("FACE_LOST_BETWEEN_FRAMES", "no face in the unflashed baseline frame")]
                )
                if request.baseline_without_face
                else self._verify_flash(
                    checked, request, self.policy.min_flash_response, subject="face"
                )
            )
            reasons.extend(flash_result.reasons)
            flash_passed, flash_score = flash_result.passed, flash_result.score
            basis = self.decision_basis
        live = flash_passed and not face_missing and (pad_result is None or pad_result.live)
        return LivenessDecision(
            live=live,
            pad=pad_result,
            flash_score=flash_score,
            reasons=reasons,
            decision_basis=basis,
            device_id=request.device_id,
        )

    def _decide_card(self, checked: _Checked, request: LivenessRequest) -> LivenessDecision:
        """A card's answer to the flash: no PAD (a printed portrait is not live)."""
        if not request.frames and not self.policy.card_flash_required:
            return LivenessDecision(
                live=True,
                pad=None,
                flash_score=0.0,
                reasons=[],
                decision_basis=BASIS_DEVICE,
                device_id=request.device_id,
            )
        flash_result = self._verify_flash(
            checked, request, self.policy.min_card_flash_response, subject="card"
        )
        return LivenessDecision(
            live=flash_result.passed,
            pad=None,
            flash_score=flash_result.score,
            reasons=flash_result.reasons,
            decision_basis=BASIS_CARD_FLASH,
            device_id=request.device_id,
        )

    def _verify_flash(
        self, checked: _Checked, request: LivenessRequest, min_response: float, *, subject: str
    ) -> flash.FlashResult:
        """The frames' answer to the challenge's flash sequence; a card answers
        more faintly than a face, hence its own `min_response`."""
        return flash.verify(
            checked.sequence,
            checked.flash_duration_ms,
            request.frames,
            min_response=min_response,
            min_score=self.policy.min_flash_score,
            subject=subject,
        )

    async def check_attestation(self, org_id: str, request: LivenessRequest) -> None:
        """The protocol checks of `check_liveness` alone (signature, capture
        time, nonce, challenge), read-only: a caller runs them before spending
        model work on a capture. Nothing is consumed; `check_liveness` checks
        again in the transaction that consumes."""
        self._validate_attestation(request)
        now = self.clock()
        await self.database.run(lambda s: self._check_protocol(s, org_id, request, now))

    async def check_liveness(self, org_id: str, request: LivenessRequest) -> LivenessDecision:
        self._validate(request)
        now = self.clock()

        def check_and_consume(session: Session) -> _Checked:
            # One transaction: the checks and the consumption are atomic (a
            # concurrent call with the same nonce or challenge fails one of
            # them). The request is fully validated above, so what follows
            # can only fail by crashing; a caller cut short after this
            # resumes the same bundle (`resume`), nothing consumed again.
            checked = self._check_protocol(session, org_id, request, now)
            if not checked.resumed:
                self._consume(session, org_id, request, checked, now)
            return checked

        try:
            checked = await self.database.run(check_and_consume)
        except IntegrityError:
            raise AlreadyExists(
                "the nonce was already used by another bundle", "NONCE_REPLAYED"
            ) from None
        decision = await asyncio.to_thread(self.decide, checked, request)
        _observe(decision, request.purpose)
        return decision


@dataclass(frozen=True)
class ShadowOutcome:
    """How a candidate PAD scorer judged the crops the live one decided on."""

    candidate: str
    # agree, disagree, skipped (no crop at a candidate's scale) or error.
    agreement: str
    score_shift: float | None = None


def shadow_compare(
    shadow: PadScorer, live: PadResult, crops: dict[float, np.ndarray]
) -> ShadowOutcome:
    """Score the crops with the candidate and report its agreement with the live
    result and the shift of its fused score, in the metrics. Never raises and
    never touches the live result: the shadow cannot change a decision."""
    candidate = "+".join(shadow.model_ids)
    outcome: ShadowOutcome
    try:
        wanted = {spec.scale for spec in shadow.specs}
        chosen = {s: c for s, c in crops.items() if any(abs(s - w) < 1e-3 for w in wanted)}
        if len(chosen) < len(wanted):
            outcome = ShadowOutcome(candidate, "skipped")
        else:
            result = shadow.score({w: _crop_for(chosen, w) for w in wanted})
            outcome = ShadowOutcome(
                candidate,
                "agree" if result.live == live.live else "disagree",
                result.fused_live_score - live.fused_live_score,
            )
    except Exception:  # noqa: BLE001 - a failing candidate is reported, never propagated
        outcome = ShadowOutcome(candidate, "error")
    metrics.SHADOW_DECISIONS.labels("pad", candidate, outcome.agreement).inc()
    if outcome.score_shift is not None:
        metrics.SHADOW_SCORE_SHIFT.labels("pad", candidate).observe(outcome.score_shift)
    return outcome


def _observe(decision: LivenessDecision, purpose: str) -> None:
    """The decision and its PAD scores in the metrics (ids never)."""
    outcome = "live" if decision.live else "not_live"
    metrics.LIVENESS_CHECKS.labels(purpose, outcome, decision.decision_basis).inc()
    if decision.pad is not None:
        metrics.PAD_SCORE.labels("fused").observe(decision.pad.fused_live_score)
        for score in decision.pad.scores:
            metrics.PAD_SCORE.labels(score.model_id).observe(score.live_score)


def _crop_for(crops: dict[float, np.ndarray], scale: float) -> np.ndarray:
    for key, crop in crops.items():
        if abs(key - scale) < 1e-3:
            return crop
    raise invalid_field("pad_crops", f"a crop at scale {scale:g} is required")
