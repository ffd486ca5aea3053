"""matching: enrollments (sealed templates), 1:1 verification, erasure."""

from __future__ import annotations

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from identity_runtime.clients import ClientFactory
from identity_runtime.convert import same_named
from services.kyc_tier import ports
from services.kyc_tier.adapters.calls import call, opaque
from services.kyc_tier.mapping.enums import SOURCE_FROM_PROTO, SOURCE_TO_PROTO, when


def _embedding(value: ports.FaceEmbedding) -> types_pb2.Embedding:
    return opaque(value.vector, types_pb2.Embedding)


def _match(reply: matching_pb2.VerifyResponse) -> ports.MatchResult:
    source = SOURCE_FROM_PROTO.get(reply.reference_source, "")
    return same_named(ports.MatchResult, reply, reference_source=source)


def _enrollment(e: matching_pb2.Enrollment) -> ports.EnrollmentInfo:
    return same_named(
        ports.EnrollmentInfo,
        e,
        source=SOURCE_FROM_PROTO.get(e.source, ""),
        model_id=e.contract.model_id,
        dimension=e.contract.dimension,
        created_at=when(e.created_at) if e.HasField("created_at") else None,
        retired_at=when(e.retired_at) if e.HasField("retired_at") else None,
        quality=e.quality if e.HasField("quality") else None,
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
        quality: float | None = None,
        supersedes: str = "",
    ) -> ports.Enrolled:
        request = matching_pb2.EnrollRequest(
            customer_id=customer_id,
            embedding=_embedding(embedding),
            source=SOURCE_TO_PROTO[source],
            verification_id=verification_id,
            search_duplicates=True,
            threshold=threshold,
            quality=quality,
            supersedes_enrollment_id=supersedes,
        )
        reply = await call("matching", self.stub.Enroll(request))
        return ports.Enrolled(
            enrollment_id=reply.enrollment.enrollment_id,
            active=reply.enrollment.active,
            duplicates=tuple(ports.Duplicate(d.customer_id, d.score) for d in reply.duplicates),
        )

    async def verify_enrolled(
        self, customer_id: str, probe: ports.FaceEmbedding, threshold: float | None = None
    ) -> ports.MatchResult:
        request = matching_pb2.VerifyRequest(probe=_embedding(probe), customer_id=customer_id)
        return await self._verify(request, threshold)

    async def verify_reference(
        self,
        probe: ports.FaceEmbedding,
        reference: ports.FaceEmbedding,
        threshold: float | None = None,
        capture_frame: bool = False,
    ) -> ports.MatchResult:
        request = matching_pb2.VerifyRequest(
            probe=_embedding(probe),
            reference_embedding=_embedding(reference),
            supplied_reference=matching_pb2.SUPPLIED_REFERENCE_CAPTURE_FRAME
            if capture_frame
            else matching_pb2.SUPPLIED_REFERENCE_PARTNER_IMAGE,
        )
        return await self._verify(request, threshold)

    async def _verify(
        self, request: matching_pb2.VerifyRequest, threshold: float | None
    ) -> ports.MatchResult:
        if threshold is not None:
            request.threshold = threshold
        return _match(await call("matching", self.stub.Verify(request)))

    async def list_enrollments(
        self, customer_id: str, include_retired: bool
    ) -> list[ports.EnrollmentInfo]:
        request = matching_pb2.ListEnrollmentsRequest(
            customer_id=customer_id, include_retired=include_retired
        )
        reply = await call("matching", self.stub.ListEnrollments(request))
        return [_enrollment(e) for e in reply.enrollments]

    async def describe_threshold(self, threshold: float | None) -> ports.ThresholdInfo:
        request = matching_pb2.DescribeThresholdRequest()
        if threshold is not None:
            request.threshold = threshold
        reply = await call("matching", self.stub.DescribeThreshold(request))
        return same_named(ports.ThresholdInfo, reply)

    async def retire(self, customer_id: str, reason: str, enrollment_id: str = "") -> int:
        request = matching_pb2.RetireEnrollmentsRequest(
            customer_id=customer_id, reason=reason, enrollment_id=enrollment_id
        )
        reply = await call("matching", self.stub.RetireEnrollments(request))
        return reply.retired_count

    async def activate(self, customer_id: str, enrollment_id: str) -> None:
        request = matching_pb2.ActivateEnrollmentRequest(
            customer_id=customer_id, enrollment_id=enrollment_id
        )
        await call("matching", self.stub.ActivateEnrollment(request))

    async def shred(self, customer_id: str) -> int:
        request = matching_pb2.ShredCustomerKeyRequest(customer_id=customer_id)
        reply = await call("matching", self.stub.ShredCustomerKey(request))
        return reply.destroyed_key_count
