"""What kyc-tier needs from the other services, in domain terms.

The flows depend on these protocols only; `adapters.py` implements them over
gRPC. Crops and per-frame evidence are opaque here: kyc-tier forwards what
capture-quality produced to liveness and embedding without looking inside
(the frames cross the network once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


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
    # Opaque: FaceCrops and per-frame evidence for liveness and embedding.
    crops: Any = None
    frame_evidence: tuple[Any, ...] = ()


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
    portrait_crops: Any = None

    @property
    def ocr_nik(self) -> str:
        return self.fields["nik"].value if "nik" in self.fields else ""


@dataclass(frozen=True)
class Attestation:
    device_id: str
    nonce: str
    bundle_sha256: str
    signature: bytes
    captured_at: Any  # protobuf Timestamp, forwarded as is


@dataclass(frozen=True)
class LivenessDecision:
    live: bool
    pad_score: float
    flash_score: float
    reasons: tuple[Reason, ...]
    decision_basis: str
    pad_models: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Challenge:
    # Opaque FlashChallenge message, returned to the partner as is.
    message: Any


@dataclass(frozen=True)
class FaceEmbedding:
    model_id: str
    dimension: int
    # Opaque Embedding message; never logged, never returned to partners.
    message: Any


@dataclass(frozen=True)
class MatchResult:
    score: float
    threshold: float
    match: bool
    estimated_false_match_rate: float
    enrollment_id: str = ""
    reference_source: str = ""


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
    created_at: Any
    retired_at: Any


class CaptureQuality(Protocol):
    async def assess_face(
        self,
        frames: Sequence[bytes],
        kind: str,
        offsets_ms: Sequence[int] = (),
        baseline: Sequence[bool] = (),
    ) -> FaceAssessment: ...

    async def check_ktp(
        self, card: bytes, submitted_nik: str, submitted_fields: Mapping[str, str]
    ) -> KtpAssessment: ...


class Liveness(Protocol):
    async def issue_challenge(self, customer_id: str, purpose: str) -> Challenge: ...

    async def register_device(
        self, customer_id: str, device_id: str, algorithm: int, public_key: bytes, platform: str
    ) -> Any: ...

    async def check(
        self,
        customer_id: str,
        purpose: str,
        challenge_id: str,
        attestation: Attestation,
        computed_bundle_sha256: str,
        face: FaceAssessment | None,
    ) -> LivenessDecision: ...


class Embedder(Protocol):
    async def embed(self, crops: Any) -> FaceEmbedding: ...


class Matcher(Protocol):
    async def enroll(
        self, customer_id: str, embedding: FaceEmbedding, source: str, verification_id: str
    ) -> Enrolled: ...

    async def verify_enrolled(self, customer_id: str, probe: FaceEmbedding) -> MatchResult: ...

    async def verify_reference(
        self, probe: FaceEmbedding, reference: FaceEmbedding
    ) -> MatchResult: ...

    async def list_enrollments(
        self, customer_id: str, include_retired: bool
    ) -> list[EnrollmentInfo]: ...

    async def retire(self, customer_id: str, reason: str) -> int: ...

    async def shred(self, customer_id: str) -> int: ...
