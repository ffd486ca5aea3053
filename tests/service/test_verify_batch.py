"""VerifyBatch through real gRPC servers on port 0, on SQLite and PostgreSQL:
per-item results and per-item refusals in request order, the size limit, and
the caller checks every RPC gets."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from services.matching.engine import MAX_VERIFY_BATCH
from services.matching.service import SPEC as MATCHING
from tests.support import channel, start_service
from tests.support.matching import QE, Client, embedding, env, near, reason, unit
from tests.support.meshauth import caller_metadata


@pytest.fixture
async def service(database_url: str):
    server = await start_service(MATCHING, env(database_url))
    yield server
    await server.stop(0)


def item(customer_id: str, probe: np.ndarray, contract=None) -> matching_pb2.VerifyBatchItem:
    return matching_pb2.VerifyBatchItem(
        customer_id=customer_id,
        probe=embedding(probe) if contract is None else embedding(probe, contract),
    )


async def batch(client: Client, items, threshold: float | None = None, metadata=None):
    return await client.stub.VerifyBatch(
        matching_pb2.VerifyBatchRequest(items=items, threshold=threshold),
        metadata=client.metadata if metadata is None else metadata,
    )


async def test_each_pair_gets_its_result_or_its_refusal_in_order(service) -> None:
    rng = np.random.default_rng(1)
    faces = {f"cus_{i}": unit(128, rng) for i in range(3)}
    async with Client(service, "org_a") as client:
        enrolled = {c: (await client.enroll(c, f)).enrollment for c, f in faces.items()}
        await client.stub.ShredCustomerKey(
            matching_pb2.ShredCustomerKeyRequest(customer_id="cus_2"), metadata=client.metadata
        )
        single = await client.verify(near(faces["cus_0"], 0.8, rng), customer_id="cus_0")
        probe = near(faces["cus_0"], 0.8, rng)
        answer = await batch(
            client,
            [
                item("cus_0", probe),
                item("cus_1", faces["cus_0"]),
                item("cus_missing", probe),
                item("cus_2", faces["cus_2"]),
                item("cus_1", unit(512, rng), QE),
                item("cus_1", faces["cus_1"][:100]),
                item("", probe),
                item("cus_1", faces["cus_1"]),
            ],
        )
    outcomes = [r.WhichOneof("outcome") for r in answer.results]
    assert outcomes == ["result", "result", *["refusal"] * 5, "result"]
    genuine, impostor, same = (answer.results[i].result for i in (0, 1, 7))
    assert genuine.match and abs(genuine.score - 0.8) < 0.01
    assert genuine.enrollment_id == enrolled["cus_0"].enrollment_id
    assert genuine.threshold == single.threshold == pytest.approx(0.48)
    assert genuine.calibration_id == single.calibration_id
    assert 0 < genuine.estimated_false_match_rate < 1e-5
    assert not impostor.match and impostor.enrollment_id == enrolled["cus_1"].enrollment_id
    assert same.match and same.score > 0.99
    refusals = [(r.refusal.code, r.refusal.reason) for r in answer.results[2:7]]
    assert refusals == [
        ("FAILED_PRECONDITION", "NO_ACTIVE_ENROLLMENT"),
        ("FAILED_PRECONDITION", "KEY_DESTROYED"),
        ("FAILED_PRECONDITION", "EMBEDDING_CONTRACT_MISMATCH"),
        ("INVALID_ARGUMENT", "EMBEDDING_INVALID"),
        ("INVALID_ARGUMENT", "INVALID_FIELD"),
    ]
    # A refusal names the item, never the probe's values.
    assert "items[5].probe" in answer.results[5].refusal.message
    assert "items[6].customer_id" in answer.results[6].refusal.message


async def test_the_organisations_threshold_applies_to_every_item(service) -> None:
    rng = np.random.default_rng(2)
    face = unit(128, rng)
    async with Client(service, "org_strict") as client:
        await client.enroll("cus_t", face)
        probe = near(face, 0.8, rng)
        strict = await batch(client, [item("cus_t", probe)] * 2, threshold=0.9)
        assert [(r.result.threshold, r.result.match) for r in strict.results] == [
            (pytest.approx(0.9), False)
        ] * 2
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await batch(client, [item("cus_t", probe)], threshold=0.99)
        assert (caught.value.code(), reason(caught.value)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
        )


async def test_an_empty_or_oversized_batch_is_refused_whole(service) -> None:
    rng = np.random.default_rng(3)
    face = unit(128, rng)
    async with Client(service, "org_a") as client:
        await client.enroll("cus_1", face)
        full = await batch(client, [item("cus_1", face)] * MAX_VERIFY_BATCH)
        assert len(full.results) == MAX_VERIFY_BATCH
        assert all(r.result.match for r in full.results)
        for items in ([], [item("cus_1", face)] * (MAX_VERIFY_BATCH + 1)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await batch(client, items)
            assert (caught.value.code(), reason(caught.value)) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_FIELD",
            )
            assert "items" in caught.value.details()


async def test_a_caller_without_a_token_or_organisation_is_refused(service) -> None:
    rng = np.random.default_rng(4)
    face = unit(128, rng)
    async with Client(service, "org_a") as client:
        await client.enroll("cus_1", face)
        async with channel(service, credentials=False) as bare:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await matching_pb2_grpc.MatchingServiceStub(bare).VerifyBatch(
                    matching_pb2.VerifyBatchRequest(items=[item("cus_1", face)])
                )
            assert (caught.value.code(), reason(caught.value)) == (
                grpc.StatusCode.UNAUTHENTICATED,
                "CALLER_UNAUTHENTICATED",
            )
        for metadata, expected in (
            ([("authorization", "Bearer not-a-token")], "CALLER_UNAUTHENTICATED"),
            (caller_metadata(""), "TENANT_MISSING"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await batch(client, [item("cus_1", face)], metadata=metadata)
            assert (caught.value.code(), reason(caught.value)) == (
                grpc.StatusCode.UNAUTHENTICATED,
                expected,
            )
    # Another organisation does not see org_a's customer.
    async with Client(service, "org_b") as other:
        answer = await batch(other, [item("cus_1", face)])
        assert answer.results[0].refusal.reason == "NO_ACTIVE_ENROLLMENT"
