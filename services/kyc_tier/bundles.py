"""Capture bundles as kyc-tier receives them: validation, digest, sealing, and
reopening a passed capture's bundle (logged)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from identity_capture.digest import DigestInput, bundle_sha256
from identity_capture.limits import MAX_FRAMES, NEGATIVE_FLASH_OFFSET, negative_flash_offset
from identity_runtime.errors import NotFound, invalid_field
from identity_store.types import utcnow
from services.kyc_tier import models, outbox, records, retention, tiers
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import Attestation, CapturedFrames, SignedCapture

# Retention of sealed frames (product brief): onboarding 3 years, step-up 90 days.
RETENTION = {"onboarding": timedelta(days=3 * 365), "step_up": timedelta(days=90)}


@dataclass(frozen=True)
class BundleInput:
    frames: tuple[bytes, ...]
    offsets_ms: tuple[int, ...]
    # Which frames are unflashed baselines (used for PAD and matching).
    baseline: tuple[bool, ...]
    # SensorData as serialised (deterministically) from the request.
    sensors: bytes
    attestation: Attestation
    captured_at: datetime | None
    # The whole bundle as received, serialised: what is sealed at rest.
    raw: bytes

    @property
    def captured(self) -> CapturedFrames:
        """The frames, as capture-quality assesses them."""
        return CapturedFrames(self.frames, self.offsets_ms, self.baseline)


@dataclass(frozen=True)
class Capture:
    """A received bundle, validated, with the digest its device signed."""

    bundle: BundleInput
    challenge_id: str
    sha256: str

    @property
    def nonce(self) -> str:
        return self.bundle.attestation.nonce

    def signed(self, customer_id: str, purpose: str) -> SignedCapture:
        """This capture as liveness checks it."""
        return SignedCapture(
            customer_id, purpose, self.challenge_id, self.bundle.attestation, self.sha256
        )


def receive(bundle: BundleInput, challenge_id: str) -> Capture:
    """Refuse a malformed bundle (before anything is written); digest it."""
    validate(bundle, challenge_id)
    return Capture(bundle, challenge_id, digest(bundle, challenge_id))


def validate(bundle: BundleInput, challenge_id: str) -> None:
    if not challenge_id:
        raise invalid_field("challenge_id", "is required")
    if not bundle.frames:
        raise invalid_field("bundle.frames", "at least one frame is required")
    if len(bundle.frames) > MAX_FRAMES:
        raise invalid_field("bundle.frames", f"at most {MAX_FRAMES} frames")
    _validate_flash_offsets(bundle)
    attestation = bundle.attestation
    if not attestation.device_id:
        raise invalid_field("bundle.attestation.device_id", "is required")
    if not 8 <= len(attestation.nonce) <= 128:
        raise invalid_field("bundle.attestation.nonce", "must be 8 to 128 characters")
    if not attestation.signature:
        raise invalid_field("bundle.attestation.signature", "is required")
    if bundle.captured_at is None:
        raise invalid_field("bundle.attestation.captured_at", "is required")


def _validate_flash_offsets(bundle: BundleInput) -> None:
    """A frame not marked baseline is a flash frame: its offset counts from
    the first colour, so it cannot be negative (liveness refuses it too).
    Only the baseline is taken before the sequence, with a negative offset.
    A frame past the sequence's end is not refused: the challenge's colours
    and duration are liveness's, which leaves such a frame out of the
    colour evidence."""
    index = negative_flash_offset(zip(bundle.offsets_ms, bundle.baseline, strict=True))
    if index is not None:
        raise invalid_field(f"bundle.frames[{index}].offset_ms", NEGATIVE_FLASH_OFFSET)


def digest(bundle: BundleInput, challenge_id: str) -> str:
    """The canonical digest the device signed (identity_capture.digest)."""
    assert bundle.captured_at is not None
    return bundle_sha256(
        DigestInput(
            challenge_id=challenge_id,
            nonce=bundle.attestation.nonce,
            device_id=bundle.attestation.device_id,
            captured_at=bundle.captured_at,
            frames=bundle.frames,
            sensors=bundle.sensors,
        )
    )


def store_sealed(
    session: Session,
    vault: PiiVault,
    customer: models.Customer,
    verification_id: str,
    sha256: str,
    raw: bytes,
    retention: str,
) -> str:
    bundle_id = records.new_id("bun")
    key_id, sealed = vault.seal_bundle(session, customer, bundle_id, raw)
    session.add(
        models.CaptureBundle(
            bundle_id=bundle_id,
            org_id=customer.org_id,
            customer_id=customer.customer_id,
            verification_id=verification_id,
            retention_class=retention,
            sha256=sha256,
            data_key_id=key_id,
            sealed_payload=sealed,
            expires_at=utcnow() + RETENTION[retention],
        )
    )
    return bundle_id


def forget_customer(session: Session, org_id: str, customer_id: str) -> None:
    """An erasure deletes the customer's sealed frames at once (the retention
    table's `erased_frames`), in the transaction that destroys their key."""
    session.execute(
        delete(models.CaptureBundle).where(
            models.CaptureBundle.org_id == org_id, models.CaptureBundle.customer_id == customer_id
        )
    )


def forget_digests(session: Session, org_id: str, customer_id: str) -> None:
    """An erasure drops the plain SHA-256 digests of what the customer's
    captures held (a bundle's, an image's), from the verification rows kept as
    regulated records and from the attempts: with the frames gone, a digest
    only serves to recognise a copy of the images elsewhere. Replay detection
    keeps working without them: the nonce stays (a nonce used again is still
    NONCE_REPLAYED) and every flow refuses an erased customer first. The
    customer's audit entries still in the outbox lose theirs too (those not
    yet relayed reach the chain without them; the relayed ones are swept)."""
    checks, attempts, queued = models.Verification, models.Attempt, models.AuditOutbox
    session.execute(
        update(checks)
        .where(checks.org_id == org_id, checks.customer_id == customer_id)
        .values(bundle_sha256=None, input_hashes={})
    )
    session.execute(
        update(attempts)
        .where(attempts.org_id == org_id, attempts.customer_id == customer_id)
        .values(bundle_sha256=None)
    )
    session.execute(
        update(queued)
        .where(queued.org_id == org_id, queued.subject == f"customer:{customer_id}")
        .values(evidence_hashes={})
    )


def open_passed_capture(
    session: Session,
    vault: PiiVault,
    org_id: str,
    customer_id: str,
    verification_id: str,
    outcome: Callable[[Session, models.Verification], str] = lambda _, row: row.outcome,
) -> bytes:
    """The sealed bundle of the customer's passed face-liveness verification,
    opened; the read is logged (ids only) in the same transaction. `outcome`
    reads the verification's outcome (a flow may follow a review's verdict)."""
    row = session.get(models.Verification, verification_id)
    if row is None or (row.org_id, row.customer_id, row.kind) != (
        org_id,
        customer_id,
        tiers.FACE_LIVENESS,
    ):
        raise NotFound(
            "no such face-liveness verification for this customer", "VERIFICATION_NOT_FOUND"
        )
    if outcome(session, row) != "passed":
        raise tiers.prerequisite_missing("that liveness check did not pass", "face_liveness")
    sealed = session.scalar(
        select(models.CaptureBundle).where(models.CaptureBundle.verification_id == verification_id)
    )
    if sealed is None or not retention.readable(sealed, utcnow()):
        raise NotFound(
            "the capture of that verification is no longer retained", "VERIFICATION_NOT_FOUND"
        )
    return open_audited(session, vault, org_id, customer_id, sealed)


def open_audited(
    session: Session,
    vault: PiiVault,
    org_id: str,
    customer_id: str,
    sealed: models.CaptureBundle,
    **context: str,
) -> bytes:
    """Open a sealed capture bundle. Every read of frames is logged (ids
    only, plus `context` such as the purpose) in the caller's transaction."""
    outbox.record(
        session,
        org_id,
        "capture_bundle.read",
        f"customer:{customer_id}",
        "success",
        details={
            "bundle_id": sealed.bundle_id,
            "verification_id": sealed.verification_id,
            **context,
        },
    )
    return vault.open_bundle(session, sealed)
