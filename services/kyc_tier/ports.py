"""What kyc-tier needs from the other services, in domain terms.

The flows depend on these protocols only; `adapters/` implements them over
gRPC, `tests/support/kyc_fakes.py` in memory, and `bootstrap.build` picks
which. Crops, per-frame evidence and embeddings are opaque here: kyc-tier
forwards what one service produced to the next without looking inside (the
frames cross the network once), so they are typed `object`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# The current time (UTC, timezone-aware); injectable so that time windows can be tested.
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Reason:
    code: str
    message: str = ""


@dataclass(frozen=True)
class FaceAssessment:
    passed: bool
    reasons: tuple[Reason, ...]
    face_found: bool
    best_frame_index: int
    detector_model: str
    # Opaque: the crops for liveness and embedding, and per-frame evidence for liveness.
    crops: object | None = None
    frame_evidence: tuple[object, ...] = ()
    # The best frame's quality measures (name -> value, e.g. blur_laplacian_var).
    quality: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class KtpField:
    value: str
    confidence: float


@dataclass(frozen=True)
class TamperSignal:
    code: str
    score: float
    decisive: bool


@dataclass(frozen=True)
class KtpAssessment:
    passed: bool
    reasons: tuple[Reason, ...]
    fields: Mapping[str, KtpField]
    nik_valid: bool
    tamper: tuple[TamperSignal, ...]
    portrait_found: bool
    ocr_model: str
    portrait_crops: object | None = None
    # Opaque: the card's colour on each flash frame, for liveness.
    frame_evidence: tuple[object, ...] = ()

    @property
    def ocr_nik(self) -> str:
        return self.fields["nik"].value if "nik" in self.fields else ""

    @property
    def crops(self) -> None:
        """A card has no PAD crops: its printed portrait is not live."""
        return None


class LivenessEvidence(Protocol):
    """What capture-quality measured that liveness judges (opaque to the flows)."""

    @property
    def crops(self) -> object | None: ...

    @property
    def frame_evidence(self) -> tuple[object, ...]: ...


@dataclass(frozen=True)
class Attestation:
    device_id: str
    nonce: str
    bundle_sha256: str
    signature: bytes
    captured_at: datetime | None


@dataclass(frozen=True)
class LivenessDecision:
    live: bool
    pad_score: float
    flash_score: float
    reasons: tuple[Reason, ...]
    decision_basis: str
    pad_models: Mapping[str, float] = field(default_factory=dict)
    # The fused PAD threshold the decision used (0 when no PAD model ran).
    pad_threshold: float = 0.0


@dataclass(frozen=True)
class LivenessPolicy:
    """An organisation's liveness switches (org_liveness_policies), sent with its checks."""

    pad_models: tuple[str, ...] = ()
    pad_threshold: float | None = None
    flash_check: bool = True
    shadow: bool = True


DEFAULT_LIVENESS_POLICY = LivenessPolicy()


@dataclass(frozen=True)
class Challenge:
    """A challenge liveness issued: the colours to flash (none for a KTP capture)."""

    challenge_id: str
    purpose: str
    sequence: tuple[str, ...]  # "#RRGGBB", in order
    flash_duration_ms: int
    issued_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class DeviceRegistration:
    device_id: str
    customer_id: str
    key_fingerprint: str
    registered_at: datetime | None
    # False when the same device and key were already registered.
    created: bool


@dataclass(frozen=True)
class FaceEmbedding:
    model_id: str
    dimension: int
    # Opaque embedding as the embedding service returned it; never logged,
    # never returned to partners.
    vector: object


@dataclass(frozen=True)
class MatchResult:
    score: float
    threshold: float
    match: bool
    estimated_false_match_rate: float
    enrollment_id: str = ""
    reference_source: str = ""


@dataclass(frozen=True)
class ThresholdInfo:
    """A match threshold as matching describes it (DescribeThreshold)."""

    threshold: float
    # -1 when the deployment's model has no calibration.
    false_match_rate: float
    default_threshold: float
    # The accepted range of organisation thresholds (inclusive).
    min_threshold: float
    max_threshold: float
    calibration_id: str


@dataclass(frozen=True)
class Duplicate:
    customer_id: str
    score: float


@dataclass(frozen=True)
class Enrolled:
    enrollment_id: str
    active: bool
    duplicates: tuple[Duplicate, ...]


@dataclass(frozen=True)
class EnrollmentInfo:
    enrollment_id: str
    customer_id: str
    source: str
    active: bool
    model_id: str
    dimension: int
    verification_id: str
    created_at: datetime | None
    retired_at: datetime | None
    quality: float | None = None  # of the reference's frame, in [0, 1]; None: unknown


@dataclass(frozen=True)
class StoredFrames:
    """The frames of a sealed capture bundle, once opened."""

    frames: tuple[bytes, ...]
    baseline: tuple[bool, ...]


class CaptureQuality(Protocol):
    async def assess_face(
        self,
        frames: Sequence[bytes],
        kind: str,
        offsets_ms: Sequence[int] = (),
        baseline: Sequence[bool] = (),
    ) -> FaceAssessment: ...

    async def check_ktp(
        self,
        frames: Sequence[bytes],
        offsets_ms: Sequence[int],
        baseline: Sequence[bool],
        submitted_nik: str,
        submitted_fields: Mapping[str, str],
    ) -> KtpAssessment: ...

    async def crop_portrait(self, image: bytes) -> bytes | None:
        """`image`'s face (else its centre) cut as JPEG; None if it does not decode."""


class Liveness(Protocol):
    async def issue_challenge(self, customer_id: str, purpose: str) -> Challenge: ...

    async def register_device(
        self, customer_id: str, device_id: str, algorithm: int, public_key: bytes, platform: str
    ) -> DeviceRegistration: ...

    async def check(
        self,
        customer_id: str,
        purpose: str,
        challenge_id: str,
        attestation: Attestation,
        computed_bundle_sha256: str,
        evidence: LivenessEvidence | None,
        policy: LivenessPolicy = DEFAULT_LIVENESS_POLICY,
        # Resume a cut-short capture of this very bundle (see liveness.proto).
        resume: bool = False,
    ) -> LivenessDecision: ...


class Embedder(Protocol):
    async def embed(self, crops: object) -> FaceEmbedding: ...


class Matcher(Protocol):
    # Duplicates at `threshold` (the organisation's; None: matching's default).
    async def enroll(
        self,
        customer_id: str,
        embedding: FaceEmbedding,
        source: str,
        verification_id: str,
        threshold: float | None = None,
        quality: float | None = None,
        supersedes: str = "",
    ) -> Enrolled: ...

    # `threshold`: the organisation's (kyc-tier's `orgs.match_threshold`; None: matching's).
    async def verify_enrolled(
        self, customer_id: str, probe: FaceEmbedding, threshold: float | None = None
    ) -> MatchResult: ...

    async def verify_reference(
        self, probe: FaceEmbedding, reference: FaceEmbedding, threshold: float | None = None
    ) -> MatchResult: ...

    async def list_enrollments(
        self, customer_id: str, include_retired: bool
    ) -> list[EnrollmentInfo]: ...

    # The threshold (None: the default) with its false-match rate and the
    # accepted range; INVALID_FIELD "threshold" when outside it.
    async def describe_threshold(self, threshold: float | None) -> ThresholdInfo: ...

    # `enrollment_id`: only that reference (else every one of the customer's).
    async def retire(self, customer_id: str, reason: str, enrollment_id: str = "") -> int: ...

    # Lift the hold on a reference stored inactive because of duplicates.
    async def activate(self, customer_id: str, enrollment_id: str) -> None: ...

    async def shred(self, customer_id: str) -> int: ...


class BundleCodec(Protocol):
    """Reads a sealed capture bundle back (the bytes are the bundle as received,
    serialised at the edge; the codec lives beside that serialisation)."""

    def decode(self, raw: bytes) -> StoredFrames: ...
