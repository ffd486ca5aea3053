"""Helpers for tests of the matching service: synthetic embeddings, settings, a client."""

from __future__ import annotations

import uuid

import grpc
import numpy as np

from identity_crypto.keyring import generate
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from identity_runtime.status import error_info, status_from_rpc_error
from tests.support import channel
from tests.support.meshauth import caller_metadata

SFACE = ("sface-2021dec", 128)
QE = ("qe-face-v3", 512)
DUKCAPIL = types_pb2.ENROLLMENT_SOURCE_DUKCAPIL
KTP = types_pb2.ENROLLMENT_SOURCE_KTP_EXTRACT
SELFIE = types_pb2.ENROLLMENT_SOURCE_ONBOARDING_SELFIE
STEP_UP = types_pb2.ENROLLMENT_SOURCE_STEP_UP_PROMOTION
KEYRING = generate("kek-test-1")


def unit(dimension: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(dimension).astype(np.float32)
    return v / np.linalg.norm(v)


def near(vector: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at the given cosine from `vector` (same face, another photo)."""
    noise = rng.standard_normal(vector.shape).astype(np.float32)
    noise -= (noise @ vector) * vector
    noise /= np.linalg.norm(noise)
    return (cosine * vector + np.sqrt(1 - cosine**2) * noise).astype(np.float32)


def embedding(vector: np.ndarray, contract: tuple[str, int] = SFACE) -> types_pb2.Embedding:
    return types_pb2.Embedding(
        contract=types_pb2.EmbeddingContract(model_id=contract[0], dimension=contract[1]),
        values=vector.tolist(),
    )


def env(url: str, contract: tuple[str, int] = SFACE, **extra: str) -> dict[str, str]:
    values = {
        "MATCHING_DATABASE_URL": url,
        "MATCHING_KEK_KEYRING": KEYRING.to_json(),
        "MATCHING_MODEL_ID": contract[0],
        "MATCHING_DIMENSION": str(contract[1]),
        "MATCHING_SYNC_INTERVAL_SECONDS": "3600",  # tests drive catch-up explicitly
    }
    values.update(extra)
    return values


def reason(exc: grpc.aio.AioRpcError) -> str:
    return error_info(status_from_rpc_error(exc)).reason


class Client:
    def __init__(self, server, org_id: str):
        self.channel = channel(server)
        self.stub = matching_pb2_grpc.MatchingServiceStub(self.channel)
        self.org_id = org_id

    @property
    def metadata(self) -> list[tuple[str, str]]:
        """A fresh caller token for each call (tokens live a minute)."""
        return caller_metadata(self.org_id)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.channel.close()

    async def enroll(
        self,
        customer_id: str,
        vector,
        source=SELFIE,
        contract=SFACE,
        duplicates=False,
        threshold: float | None = None,
        **fields,
    ):
        return await self.stub.Enroll(
            matching_pb2.EnrollRequest(
                customer_id=customer_id,
                embedding=embedding(vector, contract),
                source=source,
                verification_id=f"ver_{uuid.uuid4().hex[:8]}",
                search_duplicates=duplicates,
                threshold=threshold,
                **fields,
            ),
            metadata=self.metadata,
        )

    async def verify(
        self,
        probe,
        customer_id: str | None = None,
        reference=None,
        contract=SFACE,
        threshold: float | None = None,
        supplied_reference: int = 0,
    ):
        """`threshold`: the organisation's (as kyc-tier sends it); None = matching's default."""
        request = matching_pb2.VerifyRequest(
            probe=embedding(probe, contract),
            threshold=threshold,
            supplied_reference=supplied_reference,  # type: ignore[arg-type]
        )
        if customer_id is not None:
            request.customer_id = customer_id
        else:
            request.reference_embedding.CopyFrom(embedding(reference, contract))
        return await self.stub.Verify(request, metadata=self.metadata)

    async def search(self, probe, contract=SFACE, **fields):
        return await self.stub.Search(
            matching_pb2.SearchRequest(probe=embedding(probe, contract), **fields),
            metadata=self.metadata,
        )

    async def list(self, customer_id: str, include_retired: bool = False):
        return await self.stub.ListEnrollments(
            matching_pb2.ListEnrollmentsRequest(
                customer_id=customer_id, include_retired=include_retired
            ),
            metadata=self.metadata,
        )
