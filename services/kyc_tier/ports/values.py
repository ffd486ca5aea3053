"""The values the ports exchange: what kyc-tier sends the other services and
what it keeps of their answers (see `ports`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

# The current time (UTC, timezone-aware); injectable so that time windows can be tested.
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Reason:
    code: str
    message: str = ""


@dataclass(frozen=True)
class CapturedFrames:
    """A capture's frames, as capture-quality assesses them."""

    images: Sequence[bytes]
    # Each frame's time from the first, in milliseconds (for liveness's evidence).
    offsets_ms: Sequence[int] = ()
    # Which frames are unflashed baselines: a flash distorts PAD and embeddings.
    baseline: Sequence[bool] = ()


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
    # Opaque: another frame's aligned face, to check it is the same person.
    witness: object | None = None


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


@dataclass(frozen=True)
class Attestation:
    device_id: str
    nonce: str
    bundle_sha256: str
    signature: bytes
    captured_at: datetime | None


@dataclass(frozen=True)
class SignedCapture:
    """A capture as liveness checks it: whose, for what, the challenge it
    answers, and the device's signature over the bundle."""

    customer_id: str
    purpose: str
    challenge_id: str
    attestation: Attestation
    # The bundle's digest as kyc-tier computed it: the signature must cover it.
    computed_bundle_sha256: str


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
class DeviceInfo:
    """A registered device as liveness lists it: the key's fingerprint, never the key."""

    device_id: str
    customer_id: str
    platform: str
    algorithm: int  # KeyAlgorithm number of the contract
    key_fingerprint: str
    registered_at: datetime | None
    # Set once revoked: its signatures are refused.
    revoked_at: datetime | None = None


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
