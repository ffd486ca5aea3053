"""Page tokens are bound to the listing, the organisation and the filter that
returned them (AIP-158), through the REST gateway on both databases: for
every paged listing family (customers, attempts, a customer's attempts, the
dashboard's tier events / review queue / timeline / search, webhook
deliveries, the audit log) a token pages through with the same filter (the
page size may change), and is refused (400 INVALID_FIELD pageToken, as a
malformed token) on another listing, with another filter or by another
organisation, instead of silently giving a wrong page."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from identity_cli.schema import migrate_all
from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_store.db import Database
from services.audit.service import SPEC as AUDIT
from services.kyc_tier import records
from services.kyc_tier.bootstrap import build
from services.kyc_tier.ports import Reason
from services.kyc_tier.service import SPEC
from tests.support import channel, kyc_tier_env, start_service, unique_name
from tests.support.gateway import (
    assert_error,
    bearer,
    create_org_and_key,
    gateway_client,
    gateway_settings,
)
from tests.support.kyc_fakes import KycFakes
from tests.support.mesh import postgres_schema
from tests.support.meshauth import caller_metadata

NIK = "3273024107950003"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "postgres":
        with postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('page-tokens') / 'identity.db'}"
    migrate_all(url)
    yield url


@pytest.fixture(scope="module")
async def kyc_tier(database_url: str):
    fakes = KycFakes()

    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides())

    env = kyc_tier_env(database_url) | {
        "KYC_TIER_WEBHOOK_ALLOW_LOOPBACK": "true",
        # Deliveries are recorded, never sent: the log is what is listed here.
        "KYC_TIER_WEBHOOK_POLL_SECONDS": "3600",
    }
    server = await start_service(dataclasses.replace(SPEC, build=build_with_fakes), env)
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def audit(database_url: str):
    from identity_crypto.keyring import generate

    server = await start_service(
        AUDIT,
        {"AUDIT_DATABASE_URL": database_url, "AUDIT_HMAC_KEYRING": generate("audit-t1").to_json()},
    )
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def client(kyc_tier, audit):
    addresses = {"kyc_tier": kyc_tier.address, "audit": audit.address}
    async with gateway_client(gateway_settings(addresses)) as http:
        yield http


@dataclasses.dataclass
class Org:
    org_id: str
    client: Any
    headers: dict[str, str]

    async def get(self, path: str, **params: Any) -> Any:
        return await self.client.get(path, params=params, headers=self.headers)

    async def page(self, path: str, **params: Any) -> dict[str, Any]:
        response = await self.get(path, **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refused(self, path: str, token: str, **params: Any) -> None:
        response = await self.get(path, pageToken=token, **params)
        error = assert_error(response, 400, "INVALID_FIELD")
        assert error["metadata"]["field"] == "pageToken", error

    async def customer(self, nik: str = NIK) -> str:
        body = {"externalId": unique_name("ext"), "fullName": "Siti Rahayu", "nik": nik}
        response = await self.client.post("/api/customers", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return str(response.json()["customer"]["customerId"])

    async def all_pages(self, path: str, key: str, first_size: int, **params: Any) -> list[Any]:
        """Every item, the first page of `first_size`, the next ones of 1 (the
        page size may change between pages)."""
        body = await self.page(path, pageSize=first_size, **params)
        items = list(body.get(key, []))
        assert body.get("nextPageToken"), "expected more than one page"
        while token := body.get("nextPageToken"):
            body = await self.page(path, pageSize=1, pageToken=token, **params)
            items += body.get(key, [])
        return items


async def new_org(database_url: str, client: Any) -> Org:
    org_id, _, secret = await asyncio.to_thread(
        create_org_and_key, database_url, unique_name("Org"), ("public", "internal")
    )
    return Org(org_id, client, bearer(secret))


async def test_customer_tokens(database_url, client) -> None:
    org = await new_org(database_url, client)
    made = [await org.customer() for _ in range(3)]
    listed = await org.all_pages("/api/customers", "customers", 2)
    assert [c["customerId"] for c in listed] == made[::-1]
    token = (await org.page("/api/customers", pageSize=1))["nextPageToken"]
    # The same organisation's other listings; the same listing, another filter.
    await org.refused("/api/identity/attempts", token)
    await org.refused("/api/identity/tier-events", token)
    await org.refused("/api/identity/search", token, q="Siti")
    await org.refused("/api/identity/audit-log", token)
    await org.refused("/api/customers", token, tier="KYC_TIER_BASIC")
    # Another organisation.
    other = await new_org(database_url, client)
    await other.refused("/api/customers", token)


async def test_attempt_tokens(database_url, client) -> None:
    org = await new_org(database_url, client)
    customer_id = await org.customer()
    database = Database(database_url)
    try:
        with database.transaction() as session:
            for kind in ("ktp_capture", "face_liveness", "ktp_capture"):
                records.add_attempt(
                    session, org.org_id, customer_id, kind, "refused", (Reason("X_Y", "z"),)
                )
    finally:
        database.dispose()
    every = await org.all_pages("/api/identity/attempts", "attempts", 2)
    assert len(every) == 4  # the three and the NIK's format check
    kind = {"kind": "VERIFICATION_KIND_KTP_CAPTURE"}
    ktp = await org.all_pages("/api/identity/attempts", "attempts", 1, **kind)
    assert [a["kind"] for a in ktp] == ["VERIFICATION_KIND_KTP_CAPTURE"] * 2
    token = (await org.page("/api/identity/attempts", pageSize=1, **kind))["nextPageToken"]
    await org.refused("/api/identity/attempts", token)
    await org.refused("/api/identity/attempts", token, kind="VERIFICATION_KIND_FACE_LIVENESS")
    await org.refused("/api/identity/attempts", token, outcome="ATTEMPT_OUTCOME_REFUSED", **kind)
    await org.refused("/api/customers", token)

    # One customer's attempts: the same rows through another listing.
    path = f"/api/identity/customers/{customer_id}/attempts"
    assert len(await org.all_pages(path, "attempts", 3)) == 4
    own = (await org.page(path, pageSize=1))["nextPageToken"]
    await org.refused("/api/identity/attempts", own)
    await org.refused(f"/api/identity/customers/{customer_id}/verifications", own)
    other_customer = await org.customer()
    await org.refused(f"/api/identity/customers/{other_customer}/attempts", own)


async def test_dashboard_tokens(database_url, client) -> None:
    org = await new_org(database_url, client)
    made = [await org.customer() for _ in range(3)]
    events = await org.all_pages("/api/identity/tier-events", "events", 2)
    assert [e["customerId"] for e in events] == made[::-1]
    token = (await org.page("/api/identity/tier-events", pageSize=1))["nextPageToken"]
    await org.refused("/api/identity/tier-events", token, customerId=made[0])
    await org.refused("/api/identity/tier-events", token, startTime="2020-01-01T00:00:00Z")
    await org.refused("/api/identity/review-queue", token)
    await org.refused(f"/api/identity/customers/{made[0]}/verifications", token)
    await org.refused("/api/customers", token)

    found = await org.all_pages("/api/identity/search", "customers", 2, q="Siti")
    assert sorted(c["customerId"] for c in found) == sorted(made)
    searched = (await org.page("/api/identity/search", pageSize=1, q="Siti"))["nextPageToken"]
    await org.refused("/api/identity/search", searched, q="Rahayu")
    await org.refused("/api/customers", searched)
    await org.refused("/api/identity/tier-events", searched)


async def test_webhook_delivery_tokens(database_url, client) -> None:
    org = await new_org(database_url, client)

    async def webhook() -> str:
        created = await client.post(
            "/api/identity/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["kyc.tier_changed"]},
            headers=org.headers,
        )
        assert created.status_code == 200, created.text
        return str(created.json()["webhook"]["webhookId"])

    first, second = await webhook(), await webhook()
    for _ in range(3):  # each new customer with a NIK: none -> basic, one event each
        await org.customer()
    path = f"/api/identity/webhooks/{first}/deliveries"
    assert len(await org.all_pages(path, "deliveries", 2)) == 3
    token = (await org.page(path, pageSize=1))["nextPageToken"]
    await org.refused(f"/api/identity/webhooks/{second}/deliveries", token)
    await org.refused("/api/customers", token)
    await org.refused("/api/identity/tier-events", token)


async def test_audit_log_tokens(database_url, client, audit) -> None:
    org = await new_org(database_url, client)
    grpc_channel = channel(audit)
    stub = audit_pb2_grpc.AuditServiceStub(grpc_channel)
    for i in range(4):
        await stub.Append(
            audit_pb2.AppendRequest(
                actor="service:kyc-tier",
                action="kyc.step" if i % 2 else "face.match",
                subject=f"customer:cus_{i}",
                outcome=audit_pb2.OUTCOME_SUCCESS,
            ),
            metadata=caller_metadata(org.org_id),
        )
    await grpc_channel.close()
    entries = await org.all_pages("/api/identity/audit-log", "entries", 2)
    assert len(entries) >= 4
    kyc = await org.all_pages("/api/identity/audit-log", "entries", 1, action="kyc.")
    assert [e["action"] for e in kyc] == ["kyc.step", "kyc.step"]
    token = (await org.page("/api/identity/audit-log", pageSize=1, action="kyc."))["nextPageToken"]
    await org.refused("/api/identity/audit-log", token)
    await org.refused("/api/identity/audit-log", token, action="face.")
    await org.refused("/api/customers", token)
    await org.refused("/api/identity/attempts", token)
    other = await new_org(database_url, client)
    await other.refused("/api/identity/audit-log", token, action="kyc.")
