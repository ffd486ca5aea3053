"""In-memory fakes of kyc-tier's ports (services/kyc_tier/ports/), and a
kyc-tier core built over them with `bootstrap.build(settings, overrides=...)`.

The fakes answer what a test sets (a face assessment, a liveness decision, a
match score) and remember what they were asked, so the flows' decisions and
their records can be tested in milliseconds against a real database, with no
process and no network. Each fake refuses the way the real service does where
a flow depends on it (matching: NO_ACTIVE_ENROLLMENT).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from identity_runtime import context
from identity_runtime.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    NotFound,
    invalid_field,
)
from identity_runtime.settings import load_settings
from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore, KycTierOverrides, build
from services.kyc_tier.bundles import BundleInput
from services.kyc_tier.outbox import PendingEntry
from services.kyc_tier.partners import create_org
from services.kyc_tier.ports import (
    DEFAULT_LIVENESS_POLICY,
    Attestation,
    CapturedFrames,
    Challenge,
    Clock,
    DeviceInfo,
    DeviceRegistration,
    Duplicate,
    Enrolled,
    EnrollmentInfo,
    FaceAssessment,
    FaceEmbedding,
    KtpAssessment,
    LivenessDecision,
    LivenessEvidence,
    LivenessPolicy,
    MatchResult,
    Reason,
    SignedCapture,
    ThresholdInfo,
)
from services.kyc_tier.settings import KycTierSettings
from tests.support import kyc_tier_env, unique_name

WITNESS = "witness"
GOOD_FACE = FaceAssessment(
    passed=True,
    reasons=(),
    face_found=True,
    best_frame_index=0,
    detector_model="fake-detector",
    crops="crops",
    frame_evidence=("evidence",),
    # A flash frame's face, compared with the baseline's (FakeMatcher.frames_score).
    witness=WITNESS,
)
NO_FACE = FaceAssessment(
    passed=False, reasons=(), face_found=False, best_frame_index=-1, detector_model="fake-detector"
)
LIVE = LivenessDecision(
    live=True, pad_score=0.97, flash_score=0.9, reasons=(), decision_basis="pad+challenge"
)
PAD_ATTACK = LivenessDecision(
    live=False,
    pad_score=0.08,
    flash_score=0.9,
    reasons=(Reason("PAD_ATTACK_SUSPECTED", "presentation attack suspected"),),
    decision_basis="pad+challenge",
)
DEFAULT_THRESHOLD = 0.5


@dataclass
class Gate:
    """Holds the first call that passes it until `release` is set (`entered`
    says one is waiting): a capture kept inside capture-quality while a test
    sends another."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: bool = False

    async def through(self) -> None:
        if not self.held:
            self.held = True
            self.entered.set()
            await self.release.wait()


@dataclass
class FakeCaptureQuality:
    face: FaceAssessment = GOOD_FACE
    ktp: KtpAssessment | None = None
    face_calls: list[tuple[str, int]] = field(default_factory=list)
    # The number of frames of each KTP card checked.
    ktp_calls: list[int] = field(default_factory=list)
    # When set, the first face assessment or card check waits at it.
    gate: Gate | None = None

    async def assess_face(self, frames: CapturedFrames, kind: str) -> FaceAssessment:
        if self.gate is not None:
            await self.gate.through()
        self.face_calls.append((kind, len(frames.images)))
        return self.face

    async def check_ktp(
        self, frames: CapturedFrames, submitted_nik: str, submitted_fields: Mapping[str, str]
    ) -> KtpAssessment:
        assert self.ktp is not None, "set FakeCaptureQuality.ktp for a KTP capture"
        if self.gate is not None:
            await self.gate.through()
        self.ktp_calls.append(len(frames.images))
        return self.ktp

    async def crop_portrait(self, image: bytes) -> bytes | None:
        """capture-quality's own crop (its real detector, in this process)."""
        from services.capture_quality import portraits

        try:
            return (await asyncio.to_thread(portraits.crop, _portrait_assessor(), image)).jpeg
        except DomainError as error:
            if error.code == "INVALID_ARGUMENT":
                return None
            raise


@functools.cache
def _portrait_assessor() -> Any:
    from services.capture_quality.bootstrap import build_face_assessor
    from services.capture_quality.settings import CaptureQualitySettings

    return build_face_assessor(load_settings(CaptureQualitySettings, "CAPTURE_QUALITY", {}))


@dataclass
class FakeLiveness:
    decision: LivenessDecision = LIVE
    # Raised by `check` instead of deciding (a spent challenge, a bad signature).
    refusal: DomainError | None = None
    checks: list[tuple[str, str, str]] = field(default_factory=list)
    # (customer, purpose, challenge) of each protocol pre-check.
    attestation_checks: list[tuple[str, str, str]] = field(default_factory=list)
    # `resume` of each check (a cut-short capture's retry).
    resumed: list[bool] = field(default_factory=list)
    # Nonce -> digest of the bundles accepted: as liveness does, a nonce is
    # accepted once, unless the same bundle is resumed.
    spent: dict[str, str] = field(default_factory=dict)
    # Seconds `check` takes after spending the nonce (a deadline cuts it short).
    delay_seconds: float = 0.0
    # When set, `check` also waits for it after spending the nonce (a test holds
    # a call in flight for as long as it needs, however slow the machine).
    hold: asyncio.Event | None = None
    # The organisation policy each check was sent with.
    policies: list[LivenessPolicy] = field(default_factory=list)
    # Devices registered per customer (by id), and the customers whose devices were forgotten.
    devices: dict[str, dict[str, DeviceInfo]] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)

    async def issue_challenge(self, customer_id: str, purpose: str) -> Challenge:
        now = datetime.now(UTC)
        return Challenge(unique_name("chl"), purpose, ("#FF0000",), 400, now, now + timedelta(1))

    async def register_device(
        self, customer_id: str, device_id: str, algorithm: int, public_key: bytes, platform: str
    ) -> DeviceRegistration:
        fingerprint = hashlib.sha256(public_key).hexdigest()
        now = datetime.now(UTC)
        info = DeviceInfo(device_id, customer_id, platform, algorithm, fingerprint, now)
        self.devices.setdefault(customer_id, {})[device_id] = info
        return DeviceRegistration(device_id, customer_id, fingerprint, now, True)

    async def forget_devices(self, customer_id: str) -> int:
        self.forgotten.append(customer_id)
        return len(self.devices.pop(customer_id, {}))

    async def list_devices(self, customer_id: str) -> tuple[DeviceInfo, ...]:
        found = self.devices.get(customer_id, {}).values()
        return tuple(sorted(found, key=lambda d: d.registered_at or datetime.min, reverse=True))

    async def revoke_device(self, customer_id: str, device_id: str) -> DeviceInfo:
        mine = self.devices.get(customer_id, {})
        if device_id not in mine:
            raise NotFound("no such device for this customer", "DEVICE_NOT_FOUND")
        if mine[device_id].revoked_at is None:
            mine[device_id] = replace(mine[device_id], revoked_at=datetime.now(UTC))
        return mine[device_id]

    async def check_attestation(self, capture: SignedCapture, resume: bool = False) -> None:
        """As liveness does: the protocol checks alone, nothing spent."""
        self.attestation_checks.append((capture.customer_id, capture.purpose, capture.challenge_id))
        if self.refusal is not None:
            raise self.refusal
        seen = self.spent.get(capture.attestation.nonce)
        if seen is not None and not (resume and seen == capture.computed_bundle_sha256):
            raise AlreadyExists("the nonce was already used", "NONCE_REPLAYED")

    async def check(
        self,
        capture: SignedCapture,
        evidence: LivenessEvidence | None,
        policy: LivenessPolicy = DEFAULT_LIVENESS_POLICY,
        resume: bool = False,
    ) -> LivenessDecision:
        self.checks.append((capture.customer_id, capture.purpose, capture.challenge_id))
        self.policies.append(policy)
        self.resumed.append(resume)
        if self.refusal is not None:
            raise self.refusal
        seen = self.spent.get(capture.attestation.nonce)
        if seen is not None and not (resume and seen == capture.computed_bundle_sha256):
            raise AlreadyExists("the nonce was already used", "NONCE_REPLAYED")
        self.spent[capture.attestation.nonce] = capture.computed_bundle_sha256
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.hold is not None:
            await self.hold.wait()
        return self.decision


@dataclass
class FakeEmbedder:
    embedded: list[object] = field(default_factory=list)

    async def embed(self, crops: object) -> FaceEmbedding:
        self.embedded.append(crops)
        return FaceEmbedding("fake-embedder", 4, vector=("embedding-of", crops))


@dataclass
class FakeMatcher:
    """Scores every comparison `score`; matches at the threshold it is given
    (the organisation's) or else its own default."""

    score: float = 0.8
    false_match_rate: float = 1e-4
    # The score of a capture's flash frame (the witness) against its baseline.
    frames_score: float = 0.97
    duplicates: tuple[Duplicate, ...] = ()
    enrollments: dict[str, list[EnrollmentInfo]] = field(default_factory=dict)
    # (customer_id, "reference" or "frames", threshold) of each verification.
    verified: list[tuple[str, float | None]] = field(default_factory=list)
    shredded: set[str] = field(default_factory=set)
    # The organisation threshold each enrollment's duplicate search was given.
    enrolled_thresholds: list[float | None] = field(default_factory=list)
    # The customer of each list_enrollments call.
    listed: list[str] = field(default_factory=list)

    def enroll_reference(
        self,
        customer_id: str,
        source: str = "ktp_extract",
        active: bool = True,
        quality: float | None = None,
        created_at: datetime | None = None,
    ) -> str:
        enrollment_id = unique_name("enr")
        info = EnrollmentInfo(
            enrollment_id,
            customer_id,
            source,
            active,
            "fake-embedder",
            4,
            "",
            created_at or datetime.now(UTC),
            None,
            quality,
        )
        self.enrollments.setdefault(customer_id, []).append(info)
        return enrollment_id

    def _result(self, threshold: float | None, enrollment_id: str = "") -> MatchResult:
        applied = DEFAULT_THRESHOLD if threshold is None else threshold
        return MatchResult(
            self.score, applied, self.score >= applied, self.false_match_rate, enrollment_id
        )

    async def enroll(
        self,
        customer_id: str,
        embedding: FaceEmbedding,
        source: str,
        verification_id: str,
        threshold: float | None = None,
        quality: float | None = None,
        supersedes: str = "",
    ) -> Enrolled:
        self.enrolled_thresholds.append(threshold)
        if supersedes:
            await self.retire(customer_id, "superseded", supersedes)
        # As matching does: a reference with duplicates is held inactive.
        held = bool(self.duplicates)
        enrollment_id = self.enroll_reference(customer_id, source, not held, quality)
        return Enrolled(enrollment_id, not held, self.duplicates)

    async def verify_enrolled(
        self, customer_id: str, probe: FaceEmbedding, threshold: float | None = None
    ) -> MatchResult:
        self.verified.append((customer_id, threshold))
        active = [e for e in self.enrollments.get(customer_id, []) if e.active]
        if not active:
            raise FailedPrecondition("no active reference", "NO_ACTIVE_ENROLLMENT")
        return self._result(threshold, active[-1].enrollment_id)

    async def verify_reference(
        self,
        probe: FaceEmbedding,
        reference: FaceEmbedding,
        threshold: float | None = None,
        capture_frame: bool = False,
    ) -> MatchResult:
        if capture_frame:
            assert probe.vector == ("embedding-of", WITNESS), "only the witness is a capture frame"
            self.verified.append(("frames", threshold))
            return replace(
                self._result(threshold),
                score=self.frames_score,
                match=self.frames_score >= (threshold or DEFAULT_THRESHOLD),
            )
        self.verified.append(("reference", threshold))
        return self._result(threshold)

    async def list_enrollments(
        self, customer_id: str, include_retired: bool
    ) -> list[EnrollmentInfo]:
        self.listed.append(customer_id)
        found = self.enrollments.get(customer_id, [])
        return [e for e in found if include_retired or e.active]

    async def describe_threshold(self, threshold: float | None) -> ThresholdInfo:
        """As matching answers with the default 0.1 margin below and 0.95 above."""
        chosen = DEFAULT_THRESHOLD if threshold is None else threshold
        low = round(DEFAULT_THRESHOLD - 0.1, 6)
        if not low - 1e-6 <= chosen <= 0.95 + 1e-6:
            raise invalid_field("threshold", f"must be between {low:g} and 0.95")
        return ThresholdInfo(
            chosen, self.false_match_rate, DEFAULT_THRESHOLD, low, 0.95, "fake-calibration"
        )

    async def retire(self, customer_id: str, reason: str, enrollment_id: str = "") -> int:
        now = datetime.now(UTC)
        chosen = [
            e
            for e in self.enrollments.get(customer_id, [])
            if e.retired_at is None and enrollment_id in ("", e.enrollment_id)
        ]
        self.enrollments[customer_id] = [
            replace(e, active=False, retired_at=now) if e in chosen else e
            for e in self.enrollments.get(customer_id, [])
        ]
        return len(chosen)

    async def activate(self, customer_id: str, enrollment_id: str) -> None:
        found = [
            e for e in self.enrollments.get(customer_id, []) if e.enrollment_id == enrollment_id
        ]
        if not found or found[0].retired_at is not None:
            raise NotFound("no such held reference", "ENROLLMENT_NOT_FOUND")
        self.enrollments[customer_id] = [
            replace(e, active=e.enrollment_id == enrollment_id)
            for e in self.enrollments[customer_id]
        ]

    async def shred(self, customer_id: str) -> int:
        if customer_id in self.shredded:
            return 0
        self.shredded.add(customer_id)
        return 1


@dataclass
class FakeAuditSink:
    delivered: list[PendingEntry] = field(default_factory=list)

    async def deliver(self, entry: PendingEntry) -> None:
        self.delivered.append(entry)


@dataclass
class KycFakes:
    """One set of fakes for a kyc-tier core; tests change them between calls."""

    quality: FakeCaptureQuality = field(default_factory=FakeCaptureQuality)
    liveness: FakeLiveness = field(default_factory=FakeLiveness)
    embedder: FakeEmbedder = field(default_factory=FakeEmbedder)
    matcher: FakeMatcher = field(default_factory=FakeMatcher)
    audit: FakeAuditSink = field(default_factory=FakeAuditSink)

    def overrides(self, clock: Clock | None = None) -> KycTierOverrides:
        return KycTierOverrides(
            quality=self.quality,
            liveness=self.liveness,
            embedder=self.embedder,
            matcher=self.matcher,
            audit_sink=self.audit,
            clock=clock,
        )

    def reset(self) -> None:
        """Every fake back to its defaults, in place (the core holds these objects)."""
        for fake in (self.quality, self.liveness, self.embedder, self.matcher, self.audit):
            type(fake).__init__(fake)  # type: ignore[misc]


def kyc_settings(database_url: str) -> KycTierSettings:
    return load_settings(KycTierSettings, "KYC_TIER", kyc_tier_env(database_url))


@contextlib.asynccontextmanager
async def fake_kyc_core(
    database_url: str, fakes: KycFakes, clock: Clock | None = None
) -> AsyncIterator[KycTierCore]:
    """kyc-tier's core on a migrated database, every port a fake."""
    core = await build(kyc_settings(database_url), overrides=fakes.overrides(clock))
    try:
        # The recovery worker's start-up pass is over before the test acts (its
        # next pass is 30 s away): nothing runs behind the test's back.
        async with asyncio.timeout(30):
            await core.recovery.first_pass.wait()
        yield core
    finally:
        await core.close()


@contextlib.contextmanager
def calling_as(org_id: str, *scopes: str) -> Any:
    """The call context a servicer would see: the organisation and its key's scopes."""
    token = context.bind(
        context.CallContext(request_id=context.new_request_id(), org_id=org_id, scopes=scopes)
    )
    try:
        yield
    finally:
        context.reset(token)


async def new_org(core: KycTierCore, match_threshold: float | None = None) -> str:
    def work(session: Any) -> str:
        org_id = create_org(session, unique_name("Org"))
        if match_threshold is not None:
            session.execute(
                update(models.Org)
                .where(models.Org.org_id == org_id)
                .values(match_threshold=match_threshold)
            )
        return org_id

    return await core.database.run(work)


def capture_bundle(nonce: str | None = None, frames: int = 2) -> BundleInput:
    """A bundle as the mapping makes it from a request (the fakes never decode frames)."""
    images = tuple(f"frame-{i}".encode() for i in range(frames))
    attestation = Attestation(
        device_id="device-1",
        nonce=nonce or unique_name("nonce"),
        bundle_sha256="",
        signature=b"signed",
        captured_at=datetime.now(UTC).replace(microsecond=0),
    )
    return BundleInput(
        frames=images,
        offsets_ms=tuple(range(0, 400 * frames, 400)),
        baseline=(True,) + (False,) * (frames - 1),
        sensors=b"",
        attestation=attestation,
        captured_at=attestation.captured_at,
        raw=b"serialised-bundle:" + b"".join(images),
    )


def matching(model: Any, **where: Any) -> Any:
    """SELECT of `model`'s rows matching `where` (column == value), oldest first."""
    query = select(model).filter_by(**where)
    # Without ORDER BY, PostgreSQL returns a row after newer ones once it is
    # updated (the relay marks outbox rows delivered): the outbox's serial id
    # keeps its entries in the order they were queued.
    if hasattr(model, "id"):
        query = query.order_by(model.id)
    return query


async def rows(core: KycTierCore, model: Any, **where: Any) -> list[Any]:
    """Rows of a kyc-tier table matching `where` (column == value), oldest first."""
    return await core.database.run(lambda session: list(session.scalars(matching(model, **where))))


async def rows_in(database_url: str, model: Any, **where: Any) -> list[Any]:
    """`model`'s rows matching `where` in the database at `database_url`, in insertion order."""
    from identity_store.db import Database

    database = Database(database_url)
    try:
        query = matching(model, **where)
        return await database.run(lambda s: list(s.scalars(query)))
    finally:
        database.dispose()


async def assert_audit_entries_acceptable(core: KycTierCore) -> int:
    """Every entry kyc-tier queued is one the audit service accepts (a refused
    entry would sit in the outbox, never in the chain); how many there are."""
    entries = await rows(core, models.AuditOutbox)
    assert_acceptable_to_audit(entries)
    return len(entries)


def assert_acceptable_to_audit(entries: list[models.AuditOutbox]) -> None:
    """Each outbox entry is one the audit service's validation accepts."""
    from services.audit.chain import Draft, validate_draft

    for entry in entries:
        validate_draft(
            Draft(
                tenant_id=entry.org_id,
                actor=entry.actor,
                action=entry.action,
                subject=entry.subject,
                outcome=entry.outcome,
                request_id=entry.request_id,
                evidence_hashes=dict(entry.evidence_hashes),
                details=dict(entry.details),
            )
        )


async def console_actor(core: KycTierCore, org_id: str, *roles: str) -> str:
    """The actor of a new console user of `org_id` (no password), as the
    gateway names a session's user: kyc-tier checks the user's roles
    (services/kyc_tier/console_roles.py)."""
    from services.kyc_tier.console_models import ConsoleUser
    from services.kyc_tier.records import new_id

    user_id = new_id("usr")

    def add(session: Any) -> None:
        session.add(
            ConsoleUser(
                user_id=user_id,
                org_id=org_id,
                email=f"{user_id}@console.example",
                display_name="Test Analyst",
                roles=list(roles or ("analyst",)),
                password_hash=None,
                failed_logins=0,
            )
        )

    await core.console_users.store.write(add)
    return f"console_user:{user_id}"
