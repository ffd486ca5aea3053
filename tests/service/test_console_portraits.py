"""Review-queue portraits through the REST gateway, on PostgreSQL and
SQLite: the face crop of a review item's customers, decrypted from the
sealed capture on demand, JPEG, never cached, every read audited under the
analyst; another organisation's analyst and an anonymous caller get
nothing."""

from __future__ import annotations

import hashlib
from typing import Any

import cv2
import numpy as np

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.kyc_tier.v1 import resources_pb2
from identity_runtime.errors import Unavailable
from services.kyc_tier import bundles, models, records
from tests.service import test_console_dashboard as dashboard
from tests.service.test_console_dashboard import NIK, OTHER_NIK, held_for_review, org_with_analyst
from tests.service.test_gateway_openapi import ROUTES, build_document
from tests.support.biometrics import FACES
from tests.support.gateway import assert_error, bearer
from tests.support.kyc_fakes import rows

# The dashboard tests' fixtures: kyc-tier on PostgreSQL and SQLite, the gateway.
database_url = dashboard.database_url
fakes = dashboard.fakes
kyc_tier = dashboard.kyc_tier
client = dashboard.client

SELFIE = (FACES / "img2.jpg").read_bytes()


async def seal_capture(core: Any, org_id: str, customer_id: str, image: bytes) -> str:
    """A passed liveness capture of the customer, sealed as the pipeline seals it."""
    bundle = resources_pb2.CaptureBundle(
        frames=[resources_pb2.CapturedFrame(image=types_pb2.Image(data=image), baseline=True)]
    )
    raw = bundle.SerializeToString()

    def work(session: Any) -> str:
        customer = records.load_customer(session, org_id, customer_id, for_update=True)
        row = records.add_verification(session, customer, "face_liveness", True, ())
        return bundles.store_sealed(
            session,
            core.vault,
            customer,
            row.verification_id,
            hashlib.sha256(raw).hexdigest(),
            raw,
            "onboarding",
        )

    return str(await core.database.run(work))


async def test_review_portraits_are_face_crops_no_store_and_audited(
    database_url: str, client: Any, kyc_tier: Any, fakes: Any
) -> None:
    mine = await org_with_analyst(client, database_url)
    customer_id = await mine.customer(client, nik=NIK)
    bundle_id = await seal_capture(kyc_tier.core, mine.org_id, customer_id, SELFIE)
    held = fakes.matcher.enroll_reference(customer_id, active=False)
    review_id = await held_for_review(kyc_tier.core, mine.org_id, customer_id, held)

    queue = await mine.analyst.get(f"/api/identity/review-queue?customerId={customer_id}")
    [listed] = queue.json()["items"]
    assert listed["duplicateCustomerIds"] == ["cus_x"]

    path = f"/api/identity/review-queue/{review_id}/portraits/{customer_id}"
    response = await mine.analyst.get(path)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "no-store"
    crop = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imdecode(np.frombuffer(SELFIE, np.uint8), cv2.IMREAD_COLOR)
    assert (
        crop is not None and crop.shape[0] * crop.shape[1] < original.shape[0] * original.shape[1]
    )

    user_id = mine.analyst.body["session"]["user"]["userId"]
    reads = [
        e
        for e in await rows(kyc_tier.core, models.AuditOutbox, action="capture_bundle.read")
        if e.org_id == mine.org_id
    ]
    assert [(e.actor, e.subject) for e in reads] == [
        (f"console_user:{user_id}", f"customer:{customer_id}")
    ]
    assert reads[0].details["bundle_id"] == bundle_id
    assert reads[0].details["review_id"] == review_id

    # An internal-scope key may read it too.
    with_key = await client.get(path, headers=bearer(mine.key))
    assert with_key.status_code == 200 and with_key.content == response.content


async def test_review_portrait_refusals(
    database_url: str, client: Any, kyc_tier: Any, fakes: Any
) -> None:
    mine = await org_with_analyst(client, database_url)
    theirs = await org_with_analyst(client, database_url)
    customer_id = await mine.customer(client, nik=OTHER_NIK)
    stranger = await mine.customer(client, nik="3273024107950029")
    await seal_capture(kyc_tier.core, mine.org_id, customer_id, SELFIE)
    await seal_capture(kyc_tier.core, mine.org_id, stranger, SELFIE)
    held = fakes.matcher.enroll_reference(customer_id, active=False)
    review_id = await held_for_review(kyc_tier.core, mine.org_id, customer_id, held)
    path = f"/api/identity/review-queue/{review_id}/portraits/{customer_id}"

    assert_error(await client.get(path), 401, "API_KEY_MISSING")
    assert_error(await theirs.analyst.get(path), 404, "REVIEW_NOT_FOUND")
    # A customer the item does not name is refused like a missing item.
    other = f"/api/identity/review-queue/{review_id}/portraits/{stranger}"
    assert_error(await mine.analyst.get(other), 404, "REVIEW_NOT_FOUND")
    missing = f"/api/identity/review-queue/rev_missing/portraits/{customer_id}"
    assert_error(await mine.analyst.get(missing), 404, "REVIEW_NOT_FOUND")
    # The duplicate it names ("cus_x") has no retained capture.
    duplicate = f"/api/identity/review-queue/{review_id}/portraits/cus_x"
    assert_error(await mine.analyst.get(duplicate), 404, "PORTRAIT_NOT_FOUND")
    reads = await rows(kyc_tier.core, models.AuditOutbox, action="capture_bundle.read")
    assert [e for e in reads if e.org_id in (mine.org_id, theirs.org_id)] == []


async def test_no_portrait_of_a_customer_once_their_erasure_is_requested(
    database_url: str, client: Any, kyc_tier: Any, fakes: Any
) -> None:
    """From the erasure request on nothing of the customer is opened: while
    the erasure waits for matching (the capture's key still alive) and once
    it is complete (the key destroyed, never a 400 KEY_DESTROYED), the
    portrait is the contract's 404 PORTRAIT_NOT_FOUND and no read is audited."""
    mine = await org_with_analyst(client, database_url)
    customer_id = await mine.customer(client, nik=NIK)
    await seal_capture(kyc_tier.core, mine.org_id, customer_id, SELFIE)
    held = fakes.matcher.enroll_reference(customer_id, active=False)
    review_id = await held_for_review(kyc_tier.core, mine.org_id, customer_id, held)
    path = f"/api/identity/review-queue/{review_id}/portraits/{customer_id}"
    erase = f"/api/identity/customers/{customer_id}/erase"
    working_shred = fakes.matcher.shred

    async def down(customer_id: str) -> int:
        raise Unavailable("matching is unavailable")

    fakes.matcher.shred = down
    try:
        pending = await client.post(erase, json={"reason": "request"}, headers=bearer(mine.key))
        assert pending.status_code == 200, pending.text
        assert pending.json()["state"] == "ERASURE_STATE_IN_PROGRESS"
        assert_error(await mine.analyst.get(path), 404, "PORTRAIT_NOT_FOUND")
    finally:
        fakes.matcher.shred = working_shred
    done = await client.post(erase, json={"reason": "request"}, headers=bearer(mine.key))
    assert done.json()["state"] == "ERASURE_STATE_COMPLETED", done.text
    assert_error(await mine.analyst.get(path), 404, "PORTRAIT_NOT_FOUND")
    reads = await rows(kyc_tier.core, models.AuditOutbox, action="capture_bundle.read")
    assert [e for e in reads if e.org_id == mine.org_id] == []


def test_the_portrait_route_is_documented_as_a_jpeg() -> None:
    route = "/api/identity/review-queue/{reviewId}/portraits/{customerId}"
    operation = build_document(ROUTES)["paths"][route]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["image/jpeg"]
    assert operation["x-identity-scope"] == "internal"
