"""AppendBatch and group commit on a real audit server (port 0), on both databases:
per-entry results, refusals, and a chain that verifies after many concurrent writers."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import sqlalchemy as sa

from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_runtime.status import error_info, status_from_rpc_error
from identity_store.db import Database
from services.audit import models
from services.audit.log import AuditLog
from services.audit.service import SPEC as AUDIT
from tests.service.test_audit import KEYRING, Client, env, request
from tests.support import channel, start_service
from tests.support.meshauth import caller_metadata


def batch(*entries: audit_pb2.AppendRequest, request_ids: list[str] | None = None):
    ids = request_ids or [""] * len(entries)
    return audit_pb2.AppendBatchRequest(
        entries=[
            audit_pb2.BatchEntry(entry=e, request_id=r) for e, r in zip(entries, ids, strict=True)
        ]
    )


async def append_batch(client: Client, message: audit_pb2.AppendBatchRequest):
    return await client.stub.AppendBatch(
        message, metadata=client.metadata + [("x-request-id", "call-1")]
    )


def stored_sequences(database_url: str) -> list[int]:
    database = Database(database_url)
    with database.transaction() as session:
        sequences = session.scalars(
            sa.select(models.AuditEntry.sequence).order_by(models.AuditEntry.sequence)
        ).all()
    database.dispose()
    return list(sequences)


def verify(database_url: str):
    database = Database(database_url)
    try:
        return AuditLog(KEYRING).verify(database.transaction)
    finally:
        database.dispose()


MODES = {
    "group_commit": {"AUDIT_GROUP_COMMIT": "true"},
    "two_writers": {"AUDIT_GROUP_COMMIT": "true", "AUDIT_GROUP_COMMIT_WRITERS": "2"},
    "alone": {"AUDIT_GROUP_COMMIT": "false"},
}


@pytest.fixture(params=list(MODES))
async def audit_service(request: pytest.FixtureRequest, database_url: str):
    extra = MODES[request.param]
    server = await start_service(AUDIT, {**env(database_url), **extra})
    yield server, database_url
    await server.stop(0)


async def test_append_batch_chains_entries_in_order_with_their_request_ids(
    audit_service,
) -> None:
    server, database_url = audit_service
    async with Client(server) as client:
        first = await client.append(request(0))
        response = await append_batch(
            client,
            batch(request(1), request(2), request(3), request_ids=["outbox-1", "", "outbox-3"]),
        )
        report = await client.verify()
    entries = [r.entry for r in response.results]
    assert all(r.WhichOneof("result") == "entry" for r in response.results)
    assert [e.sequence for e in entries] == [2, 3, 4]
    assert [e.details["score"] for e in entries] == ["0.01", "0.02", "0.03"]
    assert [e.request_id for e in entries] == ["outbox-1", "call-1", "outbox-3"]
    assert {e.tenant_id for e in entries} == {"org_a"}
    assert entries[0].previous_hmac == first.entry_hmac
    assert entries[1].previous_hmac == entries[0].entry_hmac
    assert entries[2].previous_hmac == entries[1].entry_hmac
    assert (report.intact, report.entries_checked, report.head_hmac) == (
        True,
        4,
        entries[2].entry_hmac,
    )
    assert stored_sequences(database_url) == [1, 2, 3, 4]


async def test_an_invalid_entry_is_refused_alone_and_the_others_are_chained(
    audit_service,
) -> None:
    server, database_url = audit_service
    async with Client(server) as client:
        response = await append_batch(
            client,
            batch(
                request(1),
                request(2, subject="nik:3171234567890001"),
                request(3, outcome=audit_pb2.OUTCOME_UNSPECIFIED),
                request(4, evidence_hashes={"frame": "not-a-digest"}),
                request(5),
            ),
        )
        report = await client.verify()
    kinds = [r.WhichOneof("result") for r in response.results]
    assert kinds == ["entry", "refused", "refused", "refused", "entry"]
    refusals = [(r.refused.reason, r.refused.field) for r in response.results[1:4]]
    assert refusals == [
        ("INVALID_FIELD", "subject"),
        ("INVALID_FIELD", "outcome"),
        ("INVALID_FIELD", "evidence_hashes.frame"),
    ]
    assert "3171234567890001" not in str(response)
    written = [response.results[0].entry, response.results[4].entry]
    assert [e.sequence for e in written] == [1, 2]
    assert written[1].previous_hmac == written[0].entry_hmac
    assert report.intact and report.entries_checked == 2
    assert stored_sequences(database_url) == [1, 2]


async def test_a_batch_of_only_invalid_entries_writes_nothing(audit_service) -> None:
    server, database_url = audit_service
    async with Client(server) as client:
        response = await append_batch(client, batch(request(1, action="Not An Action")))
    assert response.results[0].refused.field == "action"
    assert stored_sequences(database_url) == []


async def test_empty_and_oversize_batches_are_refused_and_nothing_is_written(
    audit_service,
) -> None:
    server, database_url = audit_service
    async with Client(server) as client:
        for message in (batch(), batch(*[request(i) for i in range(501)])):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await append_batch(client, message)
            info = error_info(status_from_rpc_error(caught.value))
            assert (caught.value.code(), info.reason, info.metadata["field"]) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_FIELD",
                "entries",
            )
        # 500 is the limit, not past it.
        response = await append_batch(client, batch(*[request(i) for i in range(500)]))
    assert len(response.results) == 500
    assert stored_sequences(database_url) == list(range(1, 501))


async def test_append_batch_refuses_unauthenticated_callers_and_missing_tenants(
    audit_service,
) -> None:
    server, database_url = audit_service
    async with channel(server, credentials=False) as bare:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await audit_pb2_grpc.AuditServiceStub(bare).AppendBatch(batch(request(1)))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(status_from_rpc_error(caught.value)).reason == "CALLER_UNAUTHENTICATED"
    async with Client(server) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.stub.AppendBatch(batch(request(1)), metadata=caller_metadata(""))
    assert error_info(status_from_rpc_error(caught.value)).reason == "TENANT_MISSING"
    # A partner's token, even with the internal scope, may not append.
    async with Client(server) as client:
        partner = caller_metadata(
            "org_a", actor="api_key:key_1", scopes=("internal",), issuer="gateway"
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.stub.AppendBatch(batch(request(1)), metadata=partner)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(status_from_rpc_error(caught.value)).reason == "SCOPE_INSUFFICIENT"
    assert stored_sequences(database_url) == []


async def test_many_concurrent_clients_appending_and_batching_leave_one_verified_chain(
    audit_service,
) -> None:
    """24 clients of three organisations at once, singles and batches mixed:
    every acknowledged entry has its own place, batches are contiguous and
    in order, and the whole chain verifies."""
    server, database_url = audit_service
    clients = [Client(server, f"org_{i % 3}") for i in range(24)]

    async def single(client: Client, index: int) -> list[list[int]]:
        return [[(await client.append(request(index * 100 + i))).sequence] for i in range(10)]

    async def batches(client: Client, index: int) -> list[list[int]]:
        written = []
        for b in range(3):
            response = await append_batch(
                client, batch(*[request(index * 100 + b * 10 + i) for i in range(7)])
            )
            written.append([r.entry.sequence for r in response.results])
        return written

    try:
        results = await asyncio.gather(
            *((single if i % 2 else batches)(client, i) for i, client in enumerate(clients))
        )
        report = await clients[0].verify()
    finally:
        for client in clients:
            await client.__aexit__()
    groups = [group for result in results for group in result]
    acknowledged = sorted(s for group in groups for s in group)
    total = 12 * 10 + 12 * 3 * 7
    assert acknowledged == list(range(1, total + 1))
    for group in groups:
        assert group == list(range(group[0], group[0] + len(group)))
    assert report.intact and report.entries_checked == total
    assert stored_sequences(database_url) == acknowledged
    assert verify(database_url).intact


def keyed(*pairs: tuple[audit_pb2.AppendRequest, str]) -> audit_pb2.AppendBatchRequest:
    return audit_pb2.AppendBatchRequest(
        entries=[audit_pb2.BatchEntry(entry=e, entry_key=k) for e, k in pairs]
    )


async def test_a_redelivered_entry_key_returns_the_existing_entry_instead_of_a_second(
    audit_service,
) -> None:
    server, database_url = audit_service
    async with Client(server) as client:
        first = await append_batch(
            client, keyed((request(1), "kyc-tier:outbox:1"), (request(2), "kyc-tier:outbox:2"))
        )
        again = await append_batch(
            client,
            keyed(
                (request(1), "kyc-tier:outbox:1"),
                (request(2), "kyc-tier:outbox:2"),
                (request(3), "kyc-tier:outbox:3"),
                (request(3), "kyc-tier:outbox:3"),  # twice in one batch: once in the chain
                (request(4), ""),
                (request(5), "Budi Santoso"),
            ),
        )
        report = await client.verify()
    before = [r.entry for r in first.results]
    after = [r.entry for r in again.results[:5]]
    assert [e.sequence for e in before] == [1, 2]
    assert [e.entry_key for e in before] == ["kyc-tier:outbox:1", "kyc-tier:outbox:2"]
    assert after[:2] == before  # the same entries, not new ones
    assert [e.sequence for e in after[2:]] == [3, 3, 4]
    assert after[4].entry_key == ""
    refused = again.results[5].refused
    assert (refused.reason, refused.field) == ("INVALID_FIELD", "entry_key")
    assert "Budi" not in str(again)
    assert stored_sequences(database_url) == [1, 2, 3, 4]
    assert report.intact and report.entries_checked == 4
