"""gRPC implementations of the ports kyc-tier calls.

Each adapter converts domain values to the contract's messages and back, and
turns a downstream failure into a domain error that keeps the downstream
code and reason (so a partner sees CHALLENGE_EXPIRED, not a generic 500).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import grpc

from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_platform_api.capture_quality.v1 import capture_quality_pb2, capture_quality_pb2_grpc
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from identity_platform_api.liveness.v1 import liveness_pb2, liveness_pb2_grpc
from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from identity_runtime import context
from identity_runtime.clients import ClientFactory
from identity_runtime.status import remote_error
from services.kyc_tier import ports
from services.kyc_tier.mapping import PURPOSE_TO_PROTO, SOURCE_FROM_PROTO, SOURCE_TO_PROTO

T = TypeVar("T")

_OUTCOMES = {
    "success": audit_pb2.OUTCOME_SUCCESS,
    "denied": audit_pb2.OUTCOME_DENIED,
    "failed": audit_pb2.OUTCOME_FAILED,
}


async def _call(service: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise remote_error(exc, service) from None


def _reasons(items: Sequence[types_pb2.Reason]) -> tuple[ports.Reason, ...]:
    return tuple(ports.Reason(r.code, r.message) for r in items)


class GrpcCaptureQuality:
    def __init__(self, clients: ClientFactory):
        self.stub = clients.stub(
            "capture_quality", capture_quality_pb2_grpc.CaptureQualityServiceStub
        )

    async def assess_face(
        self,
        frames: Sequence[bytes],
        kind: str,
        offsets_ms: Sequence[int] = (),
        baseline: Sequence[bool] = (),
    ) -> ports.FaceAssessment:
        # The unflashed baseline frame, when there is one, is judged and
        # cropped: a coloured flash distorts PAD and embeddings.
        baseline_index = next((i for i, flag in enumerate(baseline) if flag), None)
        request = capture_quality_pb2.AssessFaceRequest(
            frames=[types_pb2.Image(data=frame) for frame in frames],
            kind=capture_quality_pb2.CAPTURE_KIND_SELFIE
            if kind == "selfie"
            else capture_quality_pb2.CAPTURE_KIND_REFERENCE,
            include_crops=True,
        )
        if baseline_index is not None:
            request.crop_frame_index = baseline_index
        reply = await _call("capture-quality", self.stub.AssessFace(request))
        evidence = tuple(
            liveness_pb2.FrameEvidence(
                frame_index=frame.frame_index,
                offset_ms=offsets_ms[frame.frame_index]
                if frame.frame_index < len(offsets_ms)
                else 0,
                colour=frame.colour,
                face_found=len(frame.faces) > 0,
                baseline=frame.frame_index < len(baseline) and baseline[frame.frame_index],
            )
            for frame in reply.frames
        )
        return ports.FaceAssessment(
            passed=reply.verdict == capture_quality_pb2.QUALITY_VERDICT_PASS,
            reasons=_reasons(reply.reasons),
            face_found=reply.best_frame_index >= 0,
            best_frame_index=reply.best_frame_index,
            detector_model=reply.detector_model,
            crops=reply.crops if reply.HasField("crops") else None,
            frame_evidence=evidence,
        )

    async def check_ktp(
        self, card: bytes, submitted_nik: str, submitted_fields: Mapping[str, str]
    ) -> ports.KtpAssessment:
        request = capture_quality_pb2.CheckKtpRequest(
            card_image=types_pb2.Image(data=card),
            submitted_nik=submitted_nik,
            submitted_fields=dict(submitted_fields),
            include_portrait_crops=True,
        )
        reply = await _call("capture-quality", self.stub.CheckKtp(request))
        return ports.KtpAssessment(
            passed=reply.verdict == capture_quality_pb2.QUALITY_VERDICT_PASS,
            reasons=_reasons(reply.reasons),
            fields={f.name: ports.KtpField(f.value, f.confidence) for f in reply.fields},
            nik_valid=reply.nik.valid,
            tamper=tuple(
                ports.TamperSignal(t.code, t.score, t.decisive) for t in reply.tamper_signals
            ),
            portrait_found=reply.portrait_found,
            ocr_model=reply.ocr_model,
            portrait_crops=reply.portrait_crops if reply.HasField("portrait_crops") else None,
        )


class GrpcLiveness:
    def __init__(self, clients: ClientFactory):
        self.stub = clients.stub("liveness", liveness_pb2_grpc.LivenessServiceStub)

    async def issue_challenge(self, customer_id: str, purpose: str) -> ports.Challenge:
        reply = await _call(
            "liveness",
            self.stub.IssueChallenge(
                liveness_pb2.IssueChallengeRequest(
                    customer_id=customer_id, purpose=PURPOSE_TO_PROTO[purpose]
                )
            ),
        )
        return ports.Challenge(reply.challenge)

    async def register_device(
        self, customer_id: str, device_id: str, algorithm: int, public_key: bytes, platform: str
    ) -> Any:
        reply = await _call(
            "liveness",
            self.stub.RegisterDevice(
                liveness_pb2.RegisterDeviceRequest(
                    device_id=device_id,
                    customer_id=customer_id,
                    algorithm=algorithm,
                    public_key=public_key,
                    platform=platform,
                )
            ),
        )
        return reply

    async def check(
        self,
        customer_id: str,
        purpose: str,
        challenge_id: str,
        attestation: ports.Attestation,
        computed_bundle_sha256: str,
        face: ports.FaceAssessment | None,
    ) -> ports.LivenessDecision:
        request = liveness_pb2.CheckLivenessRequest(
            customer_id=customer_id,
            purpose=PURPOSE_TO_PROTO[purpose],
            challenge_id=challenge_id,
            attestation=types_pb2.BundleAttestation(
                device_id=attestation.device_id,
                nonce=attestation.nonce,
                bundle_sha256=attestation.bundle_sha256,
                signature=attestation.signature,
                captured_at=attestation.captured_at,
            ),
            computed_bundle_sha256=computed_bundle_sha256,
        )
        if face is not None:
            if face.crops is not None:
                request.pad_crops.extend(face.crops.pad_crops)
            request.frames.extend(face.frame_evidence)
        reply = await _call("liveness", self.stub.CheckLiveness(request))
        return ports.LivenessDecision(
            live=reply.live,
            pad_score=reply.pad_score,
            flash_score=reply.flash_score,
            reasons=_reasons(reply.reasons),
            decision_basis=reply.decision_basis,
            pad_models={m.model_id: m.live_score for m in reply.pad_models},
        )


class GrpcEmbedder:
    def __init__(self, clients: ClientFactory):
        self.stub = clients.stub("embedding", embedding_pb2_grpc.EmbeddingServiceStub)

    async def embed(self, crops: Any) -> ports.FaceEmbedding:
        request = embedding_pb2.EmbedRequest(face=embedding_pb2.FaceInput(aligned=crops.aligned))
        reply = await _call("embedding", self.stub.Embed(request))
        contract = reply.embedding.contract
        return ports.FaceEmbedding(contract.model_id, contract.dimension, reply.embedding)


def _match(reply: matching_pb2.VerifyResponse) -> ports.MatchResult:
    return ports.MatchResult(
        score=reply.score,
        threshold=reply.threshold,
        match=reply.match,
        estimated_false_match_rate=reply.estimated_false_match_rate,
        enrollment_id=reply.enrollment_id,
        reference_source=SOURCE_FROM_PROTO.get(reply.reference_source, ""),
    )


class GrpcMatcher:
    def __init__(self, clients: ClientFactory):
        self.stub = clients.stub("matching", matching_pb2_grpc.MatchingServiceStub)

    async def enroll(
        self,
        customer_id: str,
        embedding: ports.FaceEmbedding,
        source: str,
        verification_id: str,
        threshold: float | None = None,
    ) -> ports.Enrolled:
        reply = await _call(
            "matching",
            self.stub.Enroll(
                matching_pb2.EnrollRequest(
                    customer_id=customer_id,
                    embedding=embedding.message,
                    source=SOURCE_TO_PROTO[source],
                    verification_id=verification_id,
                    search_duplicates=True,
                    threshold=threshold,
                )
            ),
        )
        return ports.Enrolled(
            enrollment_id=reply.enrollment.enrollment_id,
            active=reply.enrollment.active,
            duplicates=tuple(ports.Duplicate(d.customer_id, d.score) for d in reply.duplicates),
        )

    async def verify_enrolled(
        self, customer_id: str, probe: ports.FaceEmbedding, threshold: float | None = None
    ) -> ports.MatchResult:
        reply = await _call(
            "matching",
            self.stub.Verify(
                matching_pb2.VerifyRequest(
                    probe=probe.message, customer_id=customer_id, threshold=threshold
                )
            ),
        )
        return _match(reply)

    async def verify_reference(
        self,
        probe: ports.FaceEmbedding,
        reference: ports.FaceEmbedding,
        threshold: float | None = None,
    ) -> ports.MatchResult:
        # The organisation's threshold travels in the request (matching keeps
        # no organisation records); None = matching's default.
        reply = await _call(
            "matching",
            self.stub.Verify(
                matching_pb2.VerifyRequest(
                    probe=probe.message, reference_embedding=reference.message, threshold=threshold
                )
            ),
        )
        return _match(reply)

    async def list_enrollments(
        self, customer_id: str, include_retired: bool
    ) -> list[ports.EnrollmentInfo]:
        reply = await _call(
            "matching",
            self.stub.ListEnrollments(
                matching_pb2.ListEnrollmentsRequest(
                    customer_id=customer_id, include_retired=include_retired
                )
            ),
        )
        return [
            ports.EnrollmentInfo(
                enrollment_id=e.enrollment_id,
                customer_id=e.customer_id,
                source=SOURCE_FROM_PROTO.get(e.source, ""),
                active=e.active,
                model_id=e.contract.model_id,
                dimension=e.contract.dimension,
                verification_id=e.verification_id,
                created_at=e.created_at if e.HasField("created_at") else None,
                retired_at=e.retired_at if e.HasField("retired_at") else None,
            )
            for e in reply.enrollments
        ]

    async def retire(self, customer_id: str, reason: str) -> int:
        reply = await _call(
            "matching",
            self.stub.RetireEnrollments(
                matching_pb2.RetireEnrollmentsRequest(customer_id=customer_id, reason=reason)
            ),
        )
        return reply.retired_count

    async def shred(self, customer_id: str) -> int:
        reply = await _call(
            "matching",
            self.stub.ShredCustomerKey(
                matching_pb2.ShredCustomerKeyRequest(customer_id=customer_id)
            ),
        )
        return reply.destroyed_key_count


class GrpcAuditSink:
    """Delivers outbox entries to the audit service, each under the tenant,
    request id and actor of the call that produced it."""

    def __init__(self, clients: ClientFactory):
        self.stub = clients.stub("audit", audit_pb2_grpc.AuditServiceStub)

    async def deliver(self, entry: Any) -> None:
        request = audit_pb2.AppendRequest(
            actor=entry.actor,
            action=entry.action,
            subject=entry.subject,
            outcome=_OUTCOMES[entry.outcome],
            evidence_hashes=entry.evidence_hashes,
            details=entry.details,
        )
        metadata = [
            (context.ORG_KEY, entry.org_id),
            (context.REQUEST_ID_KEY, entry.request_id or context.new_request_id()),
            (context.ACTOR_KEY, entry.actor),
        ]
        await _call("audit", self.stub.Append(request, metadata=metadata))
