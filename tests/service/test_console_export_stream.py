"""CSV exports streamed end to end (issue 11): kyc-tier's server-streaming
StreamCustomersCsv sends the header, then one chunk per batch of rows, each
read in its own short transaction; the gateway writes the chunks as a chunked
HTTP body on a real socket. Neither holds more than a batch, whatever the row
count. On PostgreSQL and SQLite."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import insert

from gateway import server as gateway_server
from identity_cli.schema import migrate_all
from identity_platform_api.kyc_tier.v1 import dashboard_pb2, dashboard_pb2_grpc
from services.kyc_tier import export, models
from services.kyc_tier.bootstrap import build
from services.kyc_tier.service import SPEC
from tests.service.test_console_auth import new_org
from tests.support import channel, kyc_tier_env, start_service
from tests.support.gateway import assert_error, bearer, gateway_settings
from tests.support.kyc_fakes import KycFakes, console_actor, rows
from tests.support.mesh import postgres_schema
from tests.support.meshauth import caller_metadata

ROWS = 2 * export.BATCH_ROWS + 137


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "postgres":
        with postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'identity.db'}"
    migrate_all(url)
    yield url


@pytest.fixture(scope="module")
async def kyc_tier(database_url: str):
    fakes = KycFakes()

    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides())

    server = await start_service(
        dataclasses.replace(SPEC, build=build_with_fakes), kyc_tier_env(database_url)
    )
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def gateway(kyc_tier):
    running = await gateway_server.start(gateway_settings({"kyc_tier": kyc_tier.address}, port="0"))
    yield running
    await running.stop()


@pytest.fixture(scope="module")
async def org(database_url: str, kyc_tier) -> tuple[str, str]:
    """An organisation with ROWS customers made over the last hour (one
    starting with a formula), inserted in bulk."""
    org_id, key = await new_org(database_url)
    start = datetime.now(UTC) - timedelta(hours=1)
    values = [
        {
            "customer_id": f"cus_{org_id[-8:]}_{i:05d}",
            "org_id": org_id,
            "external_id": f"ext-{i}",
            "full_name": "=cmd|' /C calc'!A0" if i == 7 else f"Siti Rahayu {i}",
            "tier": "basic",
            "status": "active",
            # Pairs of rows share a creation time: the keyset cursor must not
            # skip or repeat either.
            "created_at": start + timedelta(milliseconds=10 * (i // 2)),
            "updated_at": start,
        }
        for i in range(ROWS)
    ]
    await kyc_tier.core.database.run(lambda s: s.execute(insert(models.Customer), values))
    return org_id, key


def span_query() -> str:
    now = datetime.now(UTC)
    after = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"createdAfter={after}&createdBefore={before}"


async def test_the_gateway_streams_the_export_as_a_chunked_body(gateway, org, kyc_tier) -> None:
    org_id, key = org
    url = f"http://{gateway.address}/api/identity/export/customers.csv?{span_query()}"
    received: list[bytes] = []
    async with httpx.AsyncClient(timeout=60) as http:
        async with http.stream("GET", url, headers=bearer(key)) as response:
            assert response.status_code == 200
            # Streamed: no length announced, chunked transfer encoding.
            assert "content-length" not in response.headers
            assert response.headers["transfer-encoding"] == "chunked"
            assert response.headers["content-type"].startswith("text/csv")
            assert response.headers["cache-control"] == "no-store"
            async for piece in response.aiter_bytes():
                received.append(piece)
    table = list(csv.DictReader(io.StringIO(b"".join(received).decode())))
    ids = [row["customer_id"] for row in table]
    assert len(ids) == ROWS and len(set(ids)) == ROWS  # none skipped, none repeated
    assert ids == sorted(ids)  # oldest first (ids follow creation order here)
    assert table[7]["full_name"].startswith("'=")  # neutralised, and masked
    assert all(not c.startswith(("=", "+", "-", "@")) for r in table for c in r.values())
    audits = await rows(kyc_tier.core, models.AuditOutbox, action="export.customers")
    assert [a.details["rows"] for a in audits if a.org_id == org_id] == [str(ROWS)]


async def test_kyc_tier_sends_a_chunk_per_batch_never_the_whole_file(kyc_tier, org) -> None:
    org_id, _ = org
    now = datetime.now(UTC)
    request = dashboard_pb2.StreamCustomersCsvRequest(
        created_after=Timestamp(seconds=int((now - timedelta(days=1)).timestamp())),
        created_before=Timestamp(seconds=int((now + timedelta(days=1)).timestamp())),
    )
    actor = await console_actor(kyc_tier.core, org_id)
    metadata = caller_metadata(org_id, scopes=("internal",), actor=actor, issuer="gateway")
    async with channel(kyc_tier, credentials=False) as chan:
        stub = dashboard_pb2_grpc.DashboardServiceStub(chan)
        chunks = [m.body async for m in stub.StreamCustomersCsv(request, metadata=metadata)]
    lines = [chunk.data.decode().count("\r\n") for chunk in chunks]
    # The header alone, then full batches, then the rest.
    assert lines == [1, export.BATCH_ROWS, export.BATCH_ROWS, ROWS - 2 * export.BATCH_ROWS]
    assert {chunk.content_type for chunk in chunks} == {"text/csv; charset=utf-8"}


async def test_a_refusal_comes_before_the_first_byte(gateway, org, monkeypatch) -> None:
    _, key = org
    monkeypatch.setattr(export, "MAX_EXPORT_ROWS", ROWS - 1)
    url = f"http://{gateway.address}/api/identity/export/customers.csv"
    async with httpx.AsyncClient(timeout=60) as http:
        too_many = await http.get(f"{url}?{span_query()}", headers=bearer(key))
        assert_error(too_many, 400, "EXPORT_TOO_LARGE")
        unbounded = await http.get(url, headers=bearer(key))
        assert_error(unbounded, 400, "INVALID_FIELD")
        assert unbounded.json()["error"]["metadata"]["field"] == "createdAfter"
        anonymous = await http.get(f"{url}?{span_query()}")
        assert anonymous.status_code == 401


async def test_a_failure_mid_stream_truncates_the_download(gateway, org, monkeypatch) -> None:
    """After the first chunk the status is sent: a failure can only cut the
    body short (no final chunk), never pass for a complete file."""
    _, key = org
    real_batch = export.batch

    def failing_batch(session, table, org_id, span, after, equal, size=export.BATCH_ROWS):
        if after is not None:
            raise RuntimeError("the database went away mid-export")
        return real_batch(session, table, org_id, span, after, equal, size)

    monkeypatch.setattr(export, "batch", failing_batch)
    url = f"http://{gateway.address}/api/identity/export/customers.csv?{span_query()}"
    received = b""
    async with httpx.AsyncClient(timeout=60) as http:
        async with http.stream("GET", url, headers=bearer(key)) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                async for piece in response.aiter_bytes():
                    received += piece
    # What arrived is the header and the first batch, nothing pretending to be more.
    assert received.count(b"\r\n") <= 1 + export.BATCH_ROWS
