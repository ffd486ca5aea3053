"""What the console's read-only webhook view reads, with an analyst's
session through the REST gateway on PostgreSQL and SQLite: the
organisation's endpoints (never a secret) and each one's delivery log with
its attempts; another organisation's analyst sees none of it."""

from __future__ import annotations

from typing import Any

from identity_store.types import utcnow
from services.kyc_tier import records, webhook_models
from tests.service import test_console_dashboard as dashboard
from tests.service.test_console_dashboard import org_with_analyst
from tests.support.gateway import assert_error, bearer

# The dashboard tests' fixtures: kyc-tier on PostgreSQL and SQLite, the gateway.
database_url = dashboard.database_url
fakes = dashboard.fakes
kyc_tier = dashboard.kyc_tier
client = dashboard.client


async def failed_delivery(core: Any, org_id: str, webhook_id: str) -> str:
    """A delivery the dispatcher tried once (the receiver answered 503)."""

    def work(session: Any) -> str:
        delivery_id = records.new_id("dlv")
        session.add(
            webhook_models.WebhookDelivery(
                delivery_id=delivery_id,
                event_id=records.new_id("evt"),
                webhook_id=webhook_id,
                org_id=org_id,
                event_type="kyc.tier_changed",
                body=b"{}",
                state="retrying",
                attempts=1,
            )
        )
        session.flush()
        session.add(
            webhook_models.WebhookAttempt(
                delivery_id=delivery_id, attempted_at=utcnow(), http_status=503, latency_ms=12
            )
        )
        return delivery_id

    return str(await core.database.run(work))


async def test_an_analyst_reads_the_webhooks_and_their_delivery_log(
    database_url: str, client: Any, kyc_tier: Any, fakes: Any
) -> None:
    mine = await org_with_analyst(client, database_url)
    theirs = await org_with_analyst(client, database_url)
    assert (await mine.analyst.get("/api/identity/webhooks")).json().get("webhooks", []) == []
    body = {"url": "https://hooks.bank.example/identity", "events": ["kyc.tier_changed"]}
    created = await client.post("/api/identity/webhooks", json=body, headers=bearer(mine.key))
    assert created.status_code == 200, created.text
    webhook_id = created.json()["webhook"]["webhookId"]
    delivery_id = await failed_delivery(kyc_tier.core, mine.org_id, webhook_id)

    listed = await mine.analyst.get("/api/identity/webhooks")
    assert listed.status_code == 200, listed.text
    [hook] = listed.json()["webhooks"]
    assert hook["webhookId"] == webhook_id and hook["url"] == body["url"] and hook["active"]
    assert "secret" not in listed.text.lower()
    path = f"/api/identity/webhooks/{webhook_id}/deliveries"
    log = await mine.analyst.get(path)
    assert log.status_code == 200, log.text
    [delivery] = log.json()["deliveries"]
    assert delivery["deliveryId"] == delivery_id and delivery["state"] == "retrying"
    assert delivery["eventType"] == "kyc.tier_changed" and delivery["attempts"] == 1
    assert [a["httpStatus"] for a in delivery["attemptLog"]] == [503]

    assert (await theirs.analyst.get("/api/identity/webhooks")).json().get("webhooks", []) == []
    assert_error(await theirs.analyst.get(path), 404, "WEBHOOK_NOT_FOUND")
    assert_error(await client.get(path), 401, "API_KEY_MISSING")
