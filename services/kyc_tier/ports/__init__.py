"""What kyc-tier needs from the other services, in domain terms.

The flows depend on these protocols only; `adapters/` implements them over
gRPC, `tests/support/kyc_fakes.py` in memory, and `bootstrap.build` picks
which. Crops, per-frame evidence and embeddings are opaque here: kyc-tier
forwards what one service produced to the next without looking inside (the
frames cross the network once), so they are typed `object`. The values the
protocols exchange are in `ports.values` (the liveness policy, the same on
both sides of the contract, in `identity_capture.policy`), re-exported here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from identity_capture.policy import DEFAULT_LIVENESS_POLICY as DEFAULT_LIVENESS_POLICY
from identity_capture.policy import LivenessPolicy as LivenessPolicy
from services.kyc_tier.ports.values import Attestation as Attestation
from services.kyc_tier.ports.values import CapturedFrames as CapturedFrames
from services.kyc_tier.ports.values import Challenge as Challenge
from services.kyc_tier.ports.values import Clock as Clock
from services.kyc_tier.ports.values import DeviceInfo as DeviceInfo
from services.kyc_tier.ports.values import DeviceRegistration as DeviceRegistration
from services.kyc_tier.ports.values import Duplicate as Duplicate
from services.kyc_tier.ports.values import Enrolled as Enrolled
from services.kyc_tier.ports.values import EnrollmentInfo as EnrollmentInfo
from services.kyc_tier.ports.values import FaceAssessment as FaceAssessment
from services.kyc_tier.ports.values import FaceEmbedding as FaceEmbedding
from services.kyc_tier.ports.values import KtpAssessment as KtpAssessment
from services.kyc_tier.ports.values import KtpField as KtpField
from services.kyc_tier.ports.values import LivenessDecision as LivenessDecision
from services.kyc_tier.ports.values import MatchResult as MatchResult
from services.kyc_tier.ports.values import Reason as Reason
from services.kyc_tier.ports.values import SignedCapture as SignedCapture
from services.kyc_tier.ports.values import StoredFrames as StoredFrames
from services.kyc_tier.ports.values import TamperSignal as TamperSignal
from services.kyc_tier.ports.values import ThresholdInfo as ThresholdInfo


class LivenessEvidence(Protocol):
    """What capture-quality measured that liveness judges (opaque to the flows)."""

    @property
    def crops(self) -> object | None: ...

    @property
    def frame_evidence(self) -> tuple[object, ...]: ...


class CaptureQuality(Protocol):
    async def assess_face(self, frames: CapturedFrames, kind: str) -> FaceAssessment: ...

    # The card is read on the first baseline frame; the others are the flashes.
    async def check_ktp(
        self, frames: CapturedFrames, submitted_nik: str, submitted_fields: Mapping[str, str]
    ) -> KtpAssessment: ...

    async def crop_portrait(self, image: bytes) -> bytes | None:
        """`image`'s face (else its centre) cut as JPEG; None if it does not decode."""


class Liveness(Protocol):
    async def issue_challenge(self, customer_id: str, purpose: str) -> Challenge: ...

    async def register_device(
        self, customer_id: str, device_id: str, algorithm: int, public_key: bytes, platform: str
    ) -> DeviceRegistration: ...

    async def forget_devices(self, customer_id: str) -> int:
        """Delete the customer's device registrations (erasure); how many."""
        ...

    async def list_devices(self, customer_id: str) -> tuple[DeviceInfo, ...]:
        """The customer's devices, revoked ones included, newest first."""
        ...

    async def revoke_device(self, customer_id: str, device_id: str) -> DeviceInfo:
        """Revoke the customer's device (a revoked one is answered unchanged);
        DEVICE_NOT_FOUND when the customer has no such device."""
        ...

    async def check(
        self,
        capture: SignedCapture,
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
        self,
        probe: FaceEmbedding,
        reference: FaceEmbedding,
        threshold: float | None = None,
        capture_frame: bool = False,
    ) -> MatchResult:
        """`capture_frame`: the reference is another frame of the probe's capture."""
        ...

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
