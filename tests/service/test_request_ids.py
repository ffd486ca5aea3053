"""A direct gRPC caller's `x-request-id` on real servers (port 0): one that
could hold personal data is replaced by a new id before anything is stored
(kyc-tier's verification, attempt and outbox rows, the audit chain) and the
error names the id used; a sane one is stored and echoed as sent. The audit
service also keeps such an id out of the chain when a batch item brings it
(an outbox row written before the services held ids to the rule)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import grpc
import pytest
import sqlalchemy as sa

from identity_platform_api.audit.v1 import audit_pb2
from identity_platform_api.kyc_tier.v1 import customers_pb2, customers_pb2_grpc
from identity_runtime.server import RunningServer, ServiceSpec
from identity_runtime.status import error_info, status_from_rpc_error
from identity_store.db import Database
from services.audit import models as audit_models
from services.audit.service import SPEC as AUDIT
from services.kyc_tier import models as kyc_models
from services.kyc_tier.service import SPEC as KYC_TIER
from tests.service.test_audit import Client, env, request
from tests.support import channel, kyc_tier_env, start_service
from tests.support.gateway import create_org_and_key

PERSONAL = "Siti Rahayu <siti@example.com> 0812 3456 7890"
GROUPED_NIK = "3273_0241_0795_0003"
SANE = "partner-req.42"
NEW_ID = re.compile(r"[0-9a-f]{32}")


@contextlib.asynccontextmanager
async def running(spec: ServiceSpec, environ: dict[str, str]) -> AsyncIterator[RunningServer]:
    server = await start_service(spec, environ)
    try:
        yield server
    finally:
        await server.stop(0)


def stored_request_ids(database_url: str, *columns: sa.Column) -> list[str]:
    database = Database(database_url)
    try:
        with database.transaction() as session:
            return [v for column in columns for v in session.scalars(sa.select(column)).all()]
    finally:
        database.dispose()


@pytest.mark.parametrize("sent", [PERSONAL, GROUPED_NIK, SANE])
async def test_kyc_tier_stores_a_direct_callers_request_id_only_when_it_is_sane(
    sqlite_url: str, sent: str
) -> None:
    org_id, _, _ = await asyncio.to_thread(create_org_and_key, sqlite_url, "Rid Bank", ("public",))
    async with running(KYC_TIER, kyc_tier_env(sqlite_url)) as server, channel(server, org_id) as ch:
        call = customers_pb2_grpc.CustomerServiceStub(ch).CreateCustomer(
            customers_pb2.CreateCustomerRequest(external_id="rid-1", nik="3273024107950003"),
            metadata=[("x-request-id", sent)],
        )
        await call
        trailers = dict(await call.trailing_metadata())
    stored = stored_request_ids(
        sqlite_url,
        kyc_models.Verification.request_id,
        kyc_models.Attempt.request_id,
        kyc_models.AuditOutbox.request_id,
    )
    stored = [v for v in stored if v]  # without the organisation's creation (no call)
    assert stored, "the call stored nothing to check"
    assert len(set(stored)) == 1  # one call, one id
    if sent == SANE:
        assert stored[0] == SANE
    else:
        assert stored[0] != sent and NEW_ID.fullmatch(stored[0])
    # A successful answer names the id used too (an error does in its ErrorInfo).
    assert trailers.get("x-request-id") == stored[0]


async def test_the_audit_service_replaces_a_direct_callers_personal_request_id(
    database_url: str,
) -> None:
    async with running(AUDIT, env(database_url)) as server, Client(server) as client:
        personal = await client.stub.Append(
            request(1), metadata=client.metadata + [("x-request-id", PERSONAL)]
        )
        sane = await client.stub.Append(
            request(2), metadata=client.metadata + [("x-request-id", SANE)]
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.stub.Append(
                request(3, action="Not An Action"),
                metadata=client.metadata + [("x-request-id", GROUPED_NIK)],
            )
    assert NEW_ID.fullmatch(personal.entry.request_id)
    assert sane.entry.request_id == SANE
    # The error names the id the service used, as the gateway echoes its own.
    used = error_info(status_from_rpc_error(refused.value)).metadata["request_id"]
    assert NEW_ID.fullmatch(used)
    assert GROUPED_NIK not in str(refused.value.trailing_metadata())
    chained = stored_request_ids(database_url, audit_models.AuditEntry.request_id)
    assert sorted(chained) == sorted([personal.entry.request_id, SANE])


async def test_the_chain_keeps_a_batch_items_personal_request_id_out(database_url: str) -> None:
    items = [(request(1), PERSONAL), (request(2), GROUPED_NIK), (request(3), "outbox-3")]
    async with running(AUDIT, env(database_url)) as server, Client(server) as client:
        response = await client.stub.AppendBatch(
            audit_pb2.AppendBatchRequest(
                entries=[audit_pb2.BatchEntry(entry=e, request_id=r) for e, r in items]
            ),
            metadata=client.metadata + [("x-request-id", "relay-1")],
        )
        report = await client.verify()
    # Chained, not refused (a refusal would have the relay retry it for ever),
    # with no request id rather than the one that came.
    assert [r.entry.request_id for r in response.results] == ["", "", "outbox-3"]
    chained = stored_request_ids(database_url, audit_models.AuditEntry.request_id)
    assert sorted(chained) == ["", "", "outbox-3"]
    assert report.intact and report.entries_checked == 3
