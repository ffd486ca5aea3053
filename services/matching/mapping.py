"""Protobuf <-> domain conversions for matching."""

from __future__ import annotations

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.matching.v1 import matching_pb2
from identity_runtime.convert import message
from identity_runtime.errors import DomainError, invalid_field
from services.matching.contract import SOURCE_PRIORITY, SOURCES_BY_PRIORITY, EmbeddingContract
from services.matching.engine import (
    CAPTURE_FRAME,
    SUPPLIED_BY_PARTNER,
    EmbeddingInput,
    EnrollOutcome,
    SearchResult,
    VerifyResult,
)
from services.matching.enrollments import EnrollmentRecord
from services.matching.gallery import Hit


def contract_from_proto(message: types_pb2.EmbeddingContract) -> EmbeddingContract:
    return EmbeddingContract(message.model_id, message.model_version, message.dimension)


def contract_to_proto(contract: EmbeddingContract) -> types_pb2.EmbeddingContract:
    return types_pb2.EmbeddingContract(
        model_id=contract.model_id,
        model_version=contract.model_version,
        dimension=contract.dimension,
    )


def embedding(message: types_pb2.Embedding) -> EmbeddingInput:
    return EmbeddingInput(contract=contract_from_proto(message.contract), values=message.values)


def supplied_source(kind: int) -> str:
    if kind == matching_pb2.SUPPLIED_REFERENCE_CAPTURE_FRAME:
        return CAPTURE_FRAME
    if kind in (
        matching_pb2.SUPPLIED_REFERENCE_UNSPECIFIED,
        matching_pb2.SUPPLIED_REFERENCE_PARTNER_IMAGE,
    ):
        return SUPPLIED_BY_PARTNER
    raise invalid_field("supplied_reference", "unknown kind")


def threshold(
    request: matching_pb2.VerifyRequest
    | matching_pb2.SearchRequest
    | matching_pb2.EnrollRequest
    | matching_pb2.DescribeThresholdRequest
    | matching_pb2.VerifyBatchRequest,
) -> float | None:
    """The organisation's threshold the caller sent; None when unset."""
    return request.threshold if request.HasField("threshold") else None


def quality(request: matching_pb2.EnrollRequest) -> float | None:
    """The reference's capture quality the caller sent; None when unset."""
    return request.quality if request.HasField("quality") else None


def source_from_proto(value: int) -> str:
    source = SOURCES_BY_PRIORITY.get(value)
    if source is None:
        raise invalid_field("source", "must be one of the EnrollmentSource values")
    return source


def source_to_proto(source: str) -> types_pb2.EnrollmentSource.ValueType:
    return types_pb2.EnrollmentSource.ValueType(
        SOURCE_PRIORITY.get(source, types_pb2.ENROLLMENT_SOURCE_UNSPECIFIED)
    )


def enrollment(record: EnrollmentRecord) -> matching_pb2.Enrollment:
    return message(
        matching_pb2.Enrollment,
        record,
        source=source_to_proto(record.source),
        contract=contract_to_proto(record.contract),
    )


def enroll_response(outcome: EnrollOutcome) -> matching_pb2.EnrollResponse:
    return matching_pb2.EnrollResponse(
        enrollment=enrollment(outcome.record),
        duplicates=[
            matching_pb2.DuplicateCandidate(
                customer_id=h.customer_id, enrollment_id=h.enrollment_id, score=h.score
            )
            for h in outcome.duplicates
        ],
    )


def verify_response(result: VerifyResult) -> matching_pb2.VerifyResponse:
    return message(
        matching_pb2.VerifyResponse,
        result,
        reference_source=source_to_proto(result.reference_source)
        if result.reference_source
        else types_pb2.ENROLLMENT_SOURCE_UNSPECIFIED,
    )


def search_hit(hit: Hit) -> matching_pb2.SearchHit:
    return matching_pb2.SearchHit(
        customer_id=hit.customer_id, enrollment_id=hit.enrollment_id, score=hit.score
    )


def search_response(result: SearchResult) -> matching_pb2.SearchResponse:
    return matching_pb2.SearchResponse(
        hits=[search_hit(h) for h in result.hits],
        index_kind=result.index_kind,
        gallery_size=result.gallery_size,
    )


def verify_batch_response(
    outcomes: list[VerifyResult | DomainError],
) -> matching_pb2.VerifyBatchResponse:
    return matching_pb2.VerifyBatchResponse(
        results=[
            matching_pb2.VerifyBatchResult(
                refusal=matching_pb2.VerifyBatchRefusal(
                    code=outcome.code, reason=outcome.reason, message=outcome.message
                )
            )
            if isinstance(outcome, DomainError)
            else matching_pb2.VerifyBatchResult(result=verify_response(outcome))
            for outcome in outcomes
        ]
    )
