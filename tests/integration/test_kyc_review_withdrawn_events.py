"""The `review.withdrawn` webhook event, on SQLite and PostgreSQL with fake
ports: queued in the transaction that withdraws a pending review item (the
erasure's personal data step, its last step, or the recovery pass), to the
organisation's endpoints subscribed to it only, ids only (nothing of the
erased customer), once however the erasure is retried or resumed, and never
for an item already decided. (Delivery to a real receiver through the
gateway: tests/service/test_webhooks.py.)"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from identity_runtime.errors import DomainError, Unavailable
from identity_store.types import utcnow
from services.kyc_tier import erasures, models, withdrawals
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.flows import erasure
from services.kyc_tier.flows.reviews import duplicate_customers
from services.kyc_tier.recovery import ErasedReviews
from tests.integration.test_kyc_trust import VALID_NIK, crash_at, duplicate_review
from tests.support.kyc_fakes import KycFakes, fake_kyc_core, new_org, rows

WITHDRAWN = "review.withdrawn"
# What new_customer and the fake KTP reading hold of a customer: none of it
# may leave in an event.
PERSONAL = ("Siti", "SITI", "siti@example.com", "+6281234567890", "6281234567890", VALID_NIK)


async def subscribe(core: KycTierCore, org_id: str, *events: str) -> str:
    created = await core.webhooks.create(
        org_id, "https://hooks.example.com/identity", list(events), ""
    )
    return created.webhook.webhook_id


async def sent(core: KycTierCore, webhook_id: str, event_type: str = WITHDRAWN) -> list[Any]:
    """The documents queued for the endpoint, of `event_type`."""
    found = await rows(core, models.WebhookDelivery, webhook_id=webhook_id, event_type=event_type)
    return [json.loads(d.body) for d in found]


def instant(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def assert_announced(
    core: KycTierCore, document: Any, review_id: str, customer_id: str, erasure_id: str
) -> None:
    """The event says which item, whose, why, by which erasure and when: ids only."""
    (item,) = await rows(core, models.ReviewItem, review_id=review_id)
    assert document["type"] == WITHDRAWN
    data = document["data"]
    withdrawn_at = data.pop("withdrawn_at")
    assert data == {
        "review_id": review_id,
        "customer_id": customer_id,
        "status": "withdrawn",
        "reason": "customer_erased",
        "erasure_id": erasure_id,
    }
    assert withdrawn_at.endswith("Z")
    assert datetime.fromisoformat(withdrawn_at) == instant(item.decided_at)
    text = json.dumps(document)
    for value in PERSONAL:
        assert value not in text


async def test_an_erasure_announces_its_withdrawn_item_to_the_subscribed_endpoints_only(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    subscribed = await subscribe(core, org_id, WITHDRAWN)
    everything_else = await subscribe(
        core, org_id, "review.decided", "customer.erased", "kyc.tier_changed"
    )
    elsewhere = await subscribe(core, await new_org(core), WITHDRAWN)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    (item,) = await rows(core, models.ReviewItem, review_id=review_id)
    duplicate_of = duplicate_customers(item)
    _, other_review = await duplicate_review(core, fakes, org_id)

    receipt = await core.erasure.erase(org_id, customer_id, "data_subject_request")
    assert receipt.state == "completed"

    (document,) = await sent(core, subscribed)
    await assert_announced(core, document, review_id, customer_id, receipt.erasure_id)
    # Not the customer the face matched either (the queue's duplicate ids).
    assert duplicate_of and not any(other in json.dumps(document) for other in duplicate_of)
    # The other endpoint hears of the erasure, not of the withdrawal; another
    # organisation's endpoint hears of nothing.
    assert await sent(core, everything_else) == []
    assert len(await sent(core, everything_else, "customer.erased")) == 1
    assert await rows(core, models.WebhookDelivery, webhook_id=elsewhere) == []
    # Another customer's item stays pending, unannounced.
    assert (await rows(core, models.ReviewItem, review_id=other_review))[0].status == "pending"

    # The erasure asked again (a retried request): its receipt, nothing more sent.
    again = await core.erasure.erase(org_id, customer_id, "data_subject_request")
    assert again.erasure_id == receipt.erasure_id
    assert len(await sent(core, subscribed)) == 1
    assert len(await sent(core, everything_else, "customer.erased")) == 1


async def test_a_decided_item_is_not_withdrawn_and_announces_nothing(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    hook = await subscribe(core, org_id, WITHDRAWN, "review.decided", "customer.erased")
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    await core.reviews.decide(org_id, review_id, "reject", "")

    receipt = await core.erasure.erase(org_id, customer_id, "")

    assert receipt.state == "completed"
    assert (await rows(core, models.ReviewItem, review_id=review_id))[0].status == "rejected"
    assert await sent(core, hook) == []
    (decided,) = await sent(core, hook, "review.decided")
    assert decided["data"]["review_id"] == review_id
    assert len(await sent(core, hook, "customer.erased")) == 1


async def test_a_resumed_erasure_announces_each_item_once(
    database_url: str, fakes: KycFakes
) -> None:
    """Killed right after the request was recorded, then right after the
    personal data step: the restarted core's erasure sends the event once."""
    later = erasure.ErasureFlow.lease + timedelta(seconds=1)
    for point in ("recorded", erasures.PERSONAL_DATA):
        async with fake_kyc_core(database_url, fakes) as first:
            org_id = await new_org(first)
            hook = await subscribe(first, org_id, WITHDRAWN)
            customer_id, review_id = await duplicate_review(first, fakes, org_id)
            first.erasure.fault = crash_at(point)
            with pytest.raises(erasure.ErasureInterrupted):
                await first.erasure.erase(org_id, customer_id, "")
            # Queued with the withdrawal or not at all.
            before = 1 if point == erasures.PERSONAL_DATA else 0
            assert len(await sent(first, hook)) == before, point
        async with fake_kyc_core(database_url, fakes, clock=lambda: utcnow() + later) as again:
            async with asyncio.timeout(30):
                await again.recovery.first_pass.wait()
            (record,) = await rows(again, models.Erasure, customer_id=customer_id)
            assert record.state == "completed", point
            (document,) = await sent(again, hook)
            await assert_announced(again, document, review_id, customer_id, record.erasure_id)


async def test_a_personal_data_step_that_fails_sends_nothing_until_it_is_redone(
    core: KycTierCore, fakes: KycFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step's transaction fails after the withdrawal: the event goes back
    with it, and the step redone sends it once."""
    org_id = await new_org(core)
    hook = await subscribe(core, org_id, WITHDRAWN)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    forget = withdrawals.forget_notes

    def fails(*args: Any) -> None:
        raise Unavailable("the database went away")

    monkeypatch.setattr(withdrawals, "forget_notes", fails)
    receipt = await core.erasure.erase(org_id, customer_id, "")
    assert receipt.state != "completed"
    assert (await rows(core, models.ReviewItem, review_id=review_id))[0].status == "pending"
    assert await sent(core, hook) == []

    monkeypatch.setattr(withdrawals, "forget_notes", forget)
    assert await core.erasure.carry_out(receipt.erasure_id)
    (document,) = await sent(core, hook)
    await assert_announced(core, document, review_id, customer_id, receipt.erasure_id)


async def test_the_last_step_and_the_recovery_pass_announce_what_they_withdraw(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """An erasure whose personal data step an older release ran withdraws in
    its last step; a customer erased by a release that did not withdraw is
    withdrawn by the recovery pass: each announced once."""
    org_id = await new_org(core)
    hook = await subscribe(core, org_id, WITHDRAWN)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    erasure_id, _ = await core.erasure.store.write(
        lambda s: erasures.record_request(
            s, org_id, customer_id, "", utcnow(), erasure.ErasureFlow.lease
        )
    )
    await core.erasure.store.write(
        lambda s: erasures.done(s, erasure_id, erasures.PERSONAL_DATA, {"keys_destroyed": 0}),
        audited=False,
    )
    assert await core.erasure.carry_out(erasure_id, leased=True)
    (document,) = await sent(core, hook)
    await assert_announced(core, document, review_id, customer_id, erasure_id)

    def as_left_by_the_older_release(session: Any) -> None:
        item = session.get(models.ReviewItem, review_id)
        item.status, item.decided_by, item.decided_at = "pending", None, None
        session.query(models.WebhookDelivery).filter_by(webhook_id=hook).delete()

    await core.erasure.store.write(as_left_by_the_older_release, audited=False)
    assert await sent(core, hook) == []
    sweep = ErasedReviews(core.erasure.store, utcnow)
    assert await sweep.sweep() == 1
    assert await sweep.sweep() == 0
    (document,) = await sent(core, hook)
    await assert_announced(core, document, review_id, customer_id, erasure_id)


async def test_subscribing_to_an_unknown_event_type_is_still_refused(core: KycTierCore) -> None:
    org_id = await new_org(core)
    # The audit action's name is no event type, nor is a near miss.
    for events in (["review.withdraw"], [WITHDRAWN, "review.withdrawn.v2"]):
        with pytest.raises(DomainError) as refused:
            await subscribe(core, org_id, *events)
        assert refused.value.reason == "INVALID_FIELD"
        assert refused.value.metadata == {"field": "events"}
    assert await core.webhooks.list(org_id) == []
    await subscribe(core, org_id, WITHDRAWN)
    assert [hook.events for hook in await core.webhooks.list(org_id)] == [(WITHDRAWN,)]
