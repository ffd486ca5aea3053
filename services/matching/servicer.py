"""gRPC servicer of the matching service: convert, call the core, convert."""

from __future__ import annotations

from typing import Any

from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from identity_runtime import context
from identity_runtime.convert import message
from identity_runtime.listing import list_reply
from identity_runtime.server import CoreServicer
from services.matching import mapping
from services.matching.bootstrap import MatchingCore
from services.matching.engine import BatchItem


class MatchingServiceServicer(
    CoreServicer[MatchingCore], matching_pb2_grpc.MatchingServiceServicer
):
    async def Enroll(
        self, request: matching_pb2.EnrollRequest, _: Any
    ) -> matching_pb2.EnrollResponse:
        outcome = await self.core.engine.enroll(
            context.require_org(),
            request.customer_id,
            mapping.embedding(request.embedding),
            mapping.source_from_proto(request.source),
            request.verification_id,
            request.search_duplicates,
            mapping.threshold(request),
            mapping.quality(request),
            request.supersedes_enrollment_id,
        )
        return mapping.enroll_response(outcome)

    async def Verify(
        self, request: matching_pb2.VerifyRequest, _: Any
    ) -> matching_pb2.VerifyResponse:
        which = request.WhichOneof("reference")
        result = await self.core.engine.verify(
            context.require_org(),
            mapping.embedding(request.probe),
            customer_id=request.customer_id if which == "customer_id" else None,
            reference=mapping.embedding(request.reference_embedding)
            if which == "reference_embedding"
            else None,
            threshold=mapping.threshold(request),
            supplied_source=mapping.supplied_source(request.supplied_reference),
        )
        return mapping.verify_response(result)

    async def Search(
        self, request: matching_pb2.SearchRequest, _: Any
    ) -> matching_pb2.SearchResponse:
        result = await self.core.engine.search(
            context.require_org(),
            mapping.embedding(request.probe),
            request.top_k,
            request.min_score,
            request.exclude_customer_id,
            mapping.threshold(request),
        )
        return mapping.search_response(result)

    async def ListEnrollments(
        self, request: matching_pb2.ListEnrollmentsRequest, _: Any
    ) -> matching_pb2.ListEnrollmentsResponse:
        records = await self.core.engine.list_enrollments(
            context.require_org(), request.customer_id, request.include_retired
        )
        return list_reply(
            matching_pb2.ListEnrollmentsResponse, records, enrollments=mapping.enrollment
        )

    async def RetireEnrollments(
        self, request: matching_pb2.RetireEnrollmentsRequest, _: Any
    ) -> matching_pb2.RetireEnrollmentsResponse:
        count = await self.core.engine.retire(
            context.require_org(), request.customer_id, request.reason, request.enrollment_id
        )
        return matching_pb2.RetireEnrollmentsResponse(retired_count=count)

    async def ActivateEnrollment(
        self, request: matching_pb2.ActivateEnrollmentRequest, _: Any
    ) -> matching_pb2.ActivateEnrollmentResponse:
        record = await self.core.engine.activate(
            context.require_org(), request.customer_id, request.enrollment_id
        )
        return matching_pb2.ActivateEnrollmentResponse(enrollment=mapping.enrollment(record))

    async def ShredCustomerKey(
        self, request: matching_pb2.ShredCustomerKeyRequest, _: Any
    ) -> matching_pb2.ShredCustomerKeyResponse:
        outcome = await self.core.engine.shred(context.require_org(), request.customer_id)
        return message(matching_pb2.ShredCustomerKeyResponse, outcome)

    async def DescribeThreshold(
        self, request: matching_pb2.DescribeThresholdRequest, _: Any
    ) -> matching_pb2.DescribeThresholdResponse:
        context.require_org()
        described = self.core.engine.profile.describe(mapping.threshold(request))
        return message(matching_pb2.DescribeThresholdResponse, described)

    async def VerifyBatch(
        self, request: matching_pb2.VerifyBatchRequest, _: Any
    ) -> matching_pb2.VerifyBatchResponse:
        outcomes = await self.core.engine.verify_batch(
            context.require_org(),
            [BatchItem(item.customer_id, mapping.embedding(item.probe)) for item in request.items],
            mapping.threshold(request),
        )
        return mapping.verify_batch_response(outcomes)
