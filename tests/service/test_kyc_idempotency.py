"""Idempotent requests and internal callers, on both databases: kyc-tier
served on port 0 with fake ports, the real gateway in front, and gRPC calls
straight to kyc-tier as an internal team makes them (issue 19).

- every capture route answers the same bundle (same nonce, same canonical
  digest) with the original verification, `replayed`, and refuses the nonce
  with anything else (409 NONCE_REPLAYED);
- `Idempotency-Key` on the other POST routes: the first response for the
  same key and body, 409 IDEMPOTENCY_KEY_REUSED for another body, per
  organisation, for 24 h, one execution for concurrent duplicates;
- the declared rate limits hold for a gRPC caller that skips the gateway;
- a capture cut short by the caller's deadline after liveness spent its
  challenge and nonce is completed by a retry of the same bundle, with one
  verification;
- an organisation that does not exist is ORGANIZATION_NOT_FOUND.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from sqlalchemy import update

from identity_cli.schema import migrate_all
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.kyc_tier.v1 import (
    customers_pb2,
    customers_pb2_grpc,
    ktp_pb2,
    ktp_pb2_grpc,
    resources_pb2,
    step_up_pb2,
    step_up_pb2_grpc,
)
from identity_runtime.errors import Unavailable
from identity_runtime.status import error_info, status_from_rpc_error
from services.kyc_tier import models
from services.kyc_tier.bootstrap import build
from services.kyc_tier.idempotency import ERASED, IdempotentRequest, erased_key
from services.kyc_tier.ports import Duplicate, KtpAssessment, KtpField
from services.kyc_tier.retention import KycSweeper
from services.kyc_tier.service import SPEC
from tests.service.test_kyc_tier_routes import Partner, partner_for
from tests.support import channel, kyc_tier_env, start_service, unique_name
from tests.support.gateway import (
    assert_documented,
    assert_error,
    gateway_client,
    gateway_settings,
)
from tests.support.kyc_fakes import KycFakes, rows
from tests.support.mesh import postgres_schema

VALID_NIK = "3273024107950003"
INVALID_NIK = "3273029907950003"
GOOD_CARD = KtpAssessment(
    passed=True,
    reasons=(),
    fields={"nik": KtpField(VALID_NIK, 0.98)},
    nik_valid=True,
    tamper=(),
    portrait_found=True,
    ocr_model="fake-ocr",
    portrait_crops="portrait",
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "postgres":
        with postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('kyc-idempotency') / 'identity.db'}"
    migrate_all(url)
    yield url


@pytest.fixture(scope="module")
def fakes() -> KycFakes:
    return KycFakes()


@pytest.fixture(scope="module")
async def kyc_tier(database_url: str, fakes: KycFakes):
    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides())

    server = await start_service(
        dataclasses.replace(SPEC, build=build_with_fakes), kyc_tier_env(database_url)
    )
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def client(kyc_tier):
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as http:
        yield http


@pytest.fixture(autouse=True)
def _fresh_fakes(fakes: KycFakes) -> None:
    fakes.reset()


def bundle(nonce: str, first_frame: bytes = b"frame-0") -> resources_pb2.CaptureBundle:
    """A capture bundle as the SDK sends it (the fakes check no signature)."""
    captured = resources_pb2.CaptureBundle(
        frames=[
            resources_pb2.CapturedFrame(
                image=types_pb2.Image(data=frame), offset_ms=i * 400, baseline=i == 0
            )
            for i, frame in enumerate((first_frame, b"frame-1"))
        ],
        attestation=types_pb2.BundleAttestation(
            device_id="device-1", nonce=nonce, signature=b"signed"
        ),
    )
    captured.attestation.captured_at.FromDatetime(datetime.now(UTC).replace(microsecond=0))
    return captured


def bundle_json(nonce: str, first_frame: bytes = b"frame-0") -> dict[str, Any]:
    return json_format.MessageToDict(bundle(nonce, first_frame))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# route: (path, the body for a customer and a nonce, where the verification id is)
def ktp_body(customer_id: str, nonce: str, frame: bytes) -> dict[str, Any]:
    return {
        "customerId": customer_id,
        "challengeId": "chl_ktp",
        "bundle": bundle_json(nonce, frame),
        "ocrFields": {"nik": VALID_NIK},
    }


def liveness_body(customer_id: str, nonce: str, frame: bytes) -> dict[str, Any]:
    return {
        "customerId": customer_id,
        "challengeId": "chl_face",
        "bundle": bundle_json(nonce, frame),
    }


def match_body(customer_id: str, nonce: str, frame: bytes) -> dict[str, Any]:
    return {"customerId": customer_id, "probeImage": {"data": b64(frame)}, "nonce": nonce}


def step_up_body(customer_id: str, nonce: str, frame: bytes) -> dict[str, Any]:
    return {
        "customerId": customer_id,
        "challengeId": "chl_step",
        "bundle": bundle_json(nonce, frame),
        "action": "transfer",
    }


CAPTURE_ROUTES = {
    "ktp capture": ("/api/identity/document/ktp/capture", ktp_body),
    "face liveness": ("/api/identity/face/liveness", liveness_body),
    "face match": ("/api/identity/face/match", match_body),
    "step-up": ("/api/identity/auth/step-up", step_up_body),
}


def without_replayed(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k != "replayed"}


def verification_id(reply: dict[str, Any]) -> str:
    return reply.get("verificationId") or reply["verification"]["verificationId"]


async def test_a_new_card_while_a_held_card_awaits_review_is_400_review_pending(
    database_url, client, kyc_tier, fakes
) -> None:
    """Through the gateway: a card held for review (its portrait is another
    customer's face) refuses a new card (400 FAILED_PRECONDITION / REVIEW_PENDING,
    documented for the route) before capture-quality runs; once an analyst
    decides, a new card is captured; the held card's replay still answers."""
    org_id, partner = await partner_for(database_url, client)
    other = await partner.new_customer()
    fakes.matcher.enroll_reference(other, "ktp_extract")
    customer_id = await partner.new_customer()
    fakes.quality.ktp = GOOD_CARD
    fakes.matcher.duplicates = (Duplicate(other, 0.93),)
    path, _ = CAPTURE_ROUTES["ktp capture"]
    held_body = ktp_body(customer_id, unique_name("nonce"), b"frame-0")
    held = await partner.post(path, held_body)
    assert held.status_code == 200, held.text
    assert held.json()["verification"]["outcome"] == "VERIFICATION_OUTCOME_NEEDS_REVIEW"
    fakes.matcher.duplicates = ()
    fakes.quality.ktp_calls.clear()

    refused = await partner.post(path, ktp_body(customer_id, unique_name("nonce"), b"frame-0"))

    error = assert_error(refused, 400, "REVIEW_PENDING")
    assert error["status"] == "FAILED_PRECONDITION"
    assert error["metadata"] == {"kind": "ktp_capture"}
    assert_documented(refused)
    assert fakes.quality.ktp_calls == []
    replay = await partner.post(path, held_body)
    assert replay.status_code == 200 and replay.json()["replayed"] is True

    (review,) = await rows(kyc_tier.core, models.ReviewItem, customer_id=customer_id)
    await kyc_tier.core.reviews.decide(org_id, review.review_id, "approve", "")
    captured = await partner.post(path, ktp_body(customer_id, unique_name("nonce"), b"frame-0"))
    assert captured.status_code == 200, captured.text
    assert captured.json()["verification"]["outcome"] == "VERIFICATION_OUTCOME_PASSED"
    assert fakes.quality.ktp_calls == [2]


@pytest.mark.parametrize("route", CAPTURE_ROUTES)
async def test_a_capture_route_replays_the_same_request_and_refuses_another(
    database_url, client, kyc_tier, fakes, route
) -> None:
    path, body_for = CAPTURE_ROUTES[route]
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    fakes.matcher.enroll_reference(customer_id)
    fakes.quality.ktp = GOOD_CARD
    nonce = unique_name("nonce")

    body = body_for(customer_id, nonce, b"frame-0")  # one capture time: one digest
    first = await partner.post(path, body)
    assert first.status_code == 200, first.text
    original = first.json()
    assert original.get("replayed", False) is False
    again = await partner.post(path, body)
    assert again.status_code == 200, again.text
    replay = again.json()
    assert replay["replayed"] is True
    assert verification_id(replay) == verification_id(original)
    # The replay is the original answer, not a new decision.
    assert without_replayed(replay) == without_replayed(original)
    if route != "face match":
        verification = replay.get("verification")
        if verification is not None:
            assert verification["challengeId"] == body["challengeId"]

    refused = await partner.post(path, body_for(customer_id, nonce, b"another frame"))
    assert_error(refused, 409, "NONCE_REPLAYED")
    recorded = await rows(kyc_tier.core, models.Verification, customer_id=customer_id, nonce=nonce)
    assert [v.verification_id for v in recorded] == [verification_id(original)]
    checked = 0 if route == "face match" else 1
    assert len(fakes.liveness.checks) == checked  # neither repeat reached liveness


async def test_a_step_up_replay_answers_only_the_action_it_was_decided_for(
    database_url, client, kyc_tier, fakes
) -> None:
    """Probe4 finding 6: the answer names the action it decided; the same
    bundle sent again for another action is 409
    STEP_UP_REPLAYED_FOR_OTHER_ACTION (documented, a refused attempt, a denied
    audit entry), never `allow` for an action nobody decided."""
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    fakes.matcher.enroll_reference(customer_id)
    body = step_up_body(customer_id, unique_name("nonce"), b"frame-0")

    first = await partner.post("/api/identity/auth/step-up", body)
    assert first.status_code == 200, first.text
    assert (first.json()["allow"], first.json()["action"]) == (True, "transfer")
    refused = await partner.post("/api/identity/auth/step-up", {**body, "action": "login"})
    error = assert_error(refused, 409, "STEP_UP_REPLAYED_FOR_OTHER_ACTION")
    assert error["status"] == "ALREADY_EXISTS"
    assert_documented(refused)
    again = await partner.post("/api/identity/auth/step-up", body)
    assert again.status_code == 200, again.text
    replay = again.json()
    assert (replay["replayed"], replay["allow"], replay["action"]) == (True, True, "transfer")

    assert len(fakes.liveness.checks) == 1
    attempts = await rows(kyc_tier.core, models.Attempt, customer_id=customer_id, kind="step_up")
    assert sorted(a.outcome for a in attempts) == ["passed", "refused"]
    (denied,) = await rows(
        kyc_tier.core,
        models.AuditOutbox,
        action="stepup.decide",
        outcome="denied",
        subject=f"customer:{customer_id}",
    )
    assert denied.details["reason"] == "STEP_UP_REPLAYED_FOR_OTHER_ACTION"


async def test_a_match_nonce_must_be_8_to_128_characters(database_url, client, fakes) -> None:
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    fakes.matcher.enroll_reference(customer_id)
    refused = await partner.post("/api/identity/face/match", match_body(customer_id, "short", b"x"))
    body = assert_error(refused, 400, "INVALID_FIELD")
    assert body["metadata"]["field"] == "nonce"


async def post_keyed(partner: Partner, path: str, body: dict[str, Any], key: str) -> Any:
    headers = {**partner.headers, "Idempotency-Key": key}
    return await partner.client.post(path, json=body, headers=headers)


def customer_body(**changes: str) -> dict[str, Any]:
    return {"externalId": unique_name("ext"), "fullName": "Siti Rahayu", **changes}


async def customers_of(kyc_tier, org_id: str) -> list[str]:
    return [c.customer_id for c in await rows(kyc_tier.core, models.Customer, org_id=org_id)]


async def test_the_same_idempotency_key_and_body_get_the_first_response(
    database_url, client, kyc_tier
) -> None:
    org_id, partner = await partner_for(database_url, client)
    body, key = customer_body(), unique_name("key")
    first = await post_keyed(partner, "/api/customers", body, key)
    assert first.status_code == 200, first.text
    again = await post_keyed(partner, "/api/customers", body, key)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert await customers_of(kyc_tier, org_id) == [first.json()["customer"]["customerId"]]

    # Another body under the key: refused, nothing written.
    other = await post_keyed(partner, "/api/customers", customer_body(), key)
    error = assert_error(other, 409, "IDEMPOTENCY_KEY_REUSED")
    assert_documented(other)
    assert "different request" in error["message"]
    # The key with another route (another RPC) is the same key: refused too.
    wrong_route = await post_keyed(partner, "/api/identity/webhooks", {"url": "https://x"}, key)
    assert_error(wrong_route, 409, "IDEMPOTENCY_KEY_REUSED")
    assert_documented(wrong_route)
    assert len(await customers_of(kyc_tier, org_id)) == 1
    # Without the header the route is as it was: a second customer is refused
    # as a duplicate external id.
    assert_error(await partner.post("/api/customers", body), 409, "CUSTOMER_ALREADY_EXISTS")


async def test_idempotency_keys_are_per_organisation_and_expire(
    database_url, client, kyc_tier
) -> None:
    org_id, partner = await partner_for(database_url, client)
    other_org, neighbour = await partner_for(database_url, client)
    key = unique_name("key")
    mine = await post_keyed(partner, "/api/customers", customer_body(externalId="ext-1"), key)
    theirs = await post_keyed(neighbour, "/api/customers", customer_body(externalId="ext-1"), key)
    assert (mine.status_code, theirs.status_code) == (200, 200), theirs.text
    assert mine.json()["customer"]["customerId"] != theirs.json()["customer"]["customerId"]
    assert len(await customers_of(kyc_tier, other_org)) == 1

    # 24 h later the key is free again: the same body runs again (and now
    # meets the customer it created).
    def age(session: Any) -> None:
        session.execute(
            update(IdempotentRequest)
            .where(IdempotentRequest.org_id == org_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    await kyc_tier.core.database.run(age)
    later = await post_keyed(partner, "/api/customers", customer_body(externalId="ext-1"), key)
    assert_error(later, 409, "CUSTOMER_ALREADY_EXISTS")
    fresh = await post_keyed(partner, "/api/customers", customer_body(), key)
    assert fresh.status_code == 200, fresh.text
    # The retention sweep drops the keys past their 24 h.
    await kyc_tier.core.database.run(age)
    await asyncio.to_thread(KycSweeper(kyc_tier.core.database, lambda: datetime.now(UTC)).sweep)
    assert await rows(kyc_tier.core, IdempotentRequest, org_id=org_id) == []
    assert len(await rows(kyc_tier.core, IdempotentRequest, org_id=other_org)) == 1


async def test_a_failed_request_releases_its_key_and_a_bad_key_is_refused(
    database_url, client, kyc_tier
) -> None:
    org_id, partner = await partner_for(database_url, client)
    key = unique_name("key")
    # 16 digits (the contract's pattern), but no date of birth: the domain refuses it.
    bad_nik = await post_keyed(partner, "/api/customers", customer_body(nik=INVALID_NIK), key)
    assert_error(bad_nik, 400, "NIK_INVALID")
    assert_documented(bad_nik)
    fixed = await post_keyed(partner, "/api/customers", customer_body(nik=VALID_NIK), key)
    assert fixed.status_code == 200, fixed.text
    for bad in ("x" * 256, ""):
        refused = await post_keyed(partner, "/api/customers", customer_body(), bad)
        error = assert_error(refused, 400, "INVALID_FIELD")
        assert error["metadata"]["field"] == "Idempotency-Key"
        assert_documented(refused)
    assert len(await customers_of(kyc_tier, org_id)) == 1


async def test_concurrent_duplicates_execute_once(database_url, client, kyc_tier) -> None:
    org_id, partner = await partner_for(database_url, client)
    body, key = customer_body(), unique_name("key")
    answers = await asyncio.gather(
        *(post_keyed(partner, "/api/customers", body, key) for _ in range(4))
    )
    statuses = sorted(a.status_code for a in answers)
    assert 200 in statuses and set(statuses) <= {200, 409}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert_error(answer, 409, "IDEMPOTENCY_KEY_IN_PROGRESS")
            assert_documented(answer)
    created = {a.json()["customer"]["customerId"] for a in answers if a.status_code == 200}
    assert len(created) == 1
    assert await customers_of(kyc_tier, org_id) == list(created)


async def test_a_webhook_and_an_erasure_replay_their_first_response(
    database_url, client, kyc_tier
) -> None:
    org_id, partner = await partner_for(database_url, client)
    hook = {"url": "https://partner.example.co.id/hooks", "events": ["kyc.tier_changed"]}
    key = unique_name("key")
    created = await post_keyed(partner, "/api/identity/webhooks", hook, key)
    assert created.status_code == 200, created.text
    again = await post_keyed(partner, "/api/identity/webhooks", hook, key)
    # The secret shown once is shown again to the same organisation's retry.
    assert again.json() == created.json() and created.json()["signingSecret"]
    assert len(await rows(kyc_tier.core, models.Webhook, org_id=org_id)) == 1

    # A customer created with a key: its kept response holds the name, and
    # the erasure drops it.
    created_customer = await post_keyed(partner, "/api/customers", customer_body(), "create-1")
    customer_id = created_customer.json()["customer"]["customerId"]
    kept = await rows(kyc_tier.core, IdempotentRequest, org_id=org_id, customer_id=customer_id)
    assert len(kept) == 1 and kept[0].response and b"Siti" not in kept[0].response
    erase = f"/api/identity/customers/{customer_id}/erase"
    erased = await post_keyed(partner, erase, {}, "erase-1")
    assert erased.status_code == 200, erased.text
    assert (await post_keyed(partner, erase, {}, "erase-1")).json() == erased.json()
    assert len(await rows(kyc_tier.core, models.Erasure, customer_id=customer_id)) == 1
    remaining = await rows(kyc_tier.core, IdempotentRequest, org_id=org_id, customer_id=customer_id)
    by_key = {r.idempotency_key: r for r in remaining}
    assert set(by_key) == {erased_key("create-1"), "erase-1"}
    assert by_key["erase-1"].response  # the receipt: ids only
    # The creation's key stays claimed, by its digest, with neither its
    # response nor its request's digest.
    tombstone = by_key[erased_key("create-1")]
    assert (tombstone.response, tombstone.request_sha256) == (None, ERASED)
    other = await partner.new_customer()
    reused = await post_keyed(partner, f"/api/identity/customers/{other}/erase", {}, "erase-1")
    assert_error(reused, 409, "IDEMPOTENCY_KEY_REUSED")
    assert_documented(reused)


async def test_an_erasure_asked_again_with_its_key_answers_its_progress(
    database_url, client, kyc_tier, fakes
) -> None:
    """An erasure held up by matching answers IN_PROGRESS; asked again with
    the same Idempotency-Key once matching is back, it answers COMPLETED (the
    same erasure), not the first receipt again (black-box probe 7, D14:
    re-sending is a partner's only way to follow an erasure). The key still
    refuses another request."""
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    fakes.matcher.enroll_reference(customer_id)
    working_shred = fakes.matcher.shred

    async def down(customer_id: str) -> int:
        raise Unavailable("matching is unavailable")

    erase = f"/api/identity/customers/{customer_id}/erase"
    key = unique_name("erase")
    fakes.matcher.shred = down  # type: ignore[method-assign]
    try:
        pending = await post_keyed(partner, erase, {"reason": "data_subject_request"}, key)
    finally:
        fakes.matcher.shred = working_shred  # type: ignore[method-assign]
    assert pending.status_code == 200, pending.text
    assert pending.json()["state"] == "ERASURE_STATE_IN_PROGRESS"
    done = await post_keyed(partner, erase, {"reason": "data_subject_request"}, key)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "ERASURE_STATE_COMPLETED"
    assert done.json()["erasureId"] == pending.json()["erasureId"]
    assert done.json()["enrollmentsRetired"] == 1
    assert len(await rows(kyc_tier.core, models.Erasure, customer_id=customer_id)) == 1
    other = await partner.new_customer()
    reused = await post_keyed(partner, f"/api/identity/customers/{other}/erase", {}, key)
    assert_error(reused, 409, "IDEMPOTENCY_KEY_REUSED")


async def test_a_retry_after_the_customers_erasure_is_410_and_creates_no_one(
    database_url, client, kyc_tier
) -> None:
    """probe4 finding 10: a client's retry of a creation, within the key's
    24 h, after the customer was erased, must not collect them again."""
    org_id, partner = await partner_for(database_url, client)
    body = customer_body(nik=VALID_NIK, email="siti@mail.example", phone="+6281234567890")
    key = f"create-{body['externalId']}"  # a partner's key may name its id of the person
    created = await post_keyed(partner, "/api/customers", body, key)
    assert created.status_code == 200, created.text
    customer_id = created.json()["customer"]["customerId"]
    upgraded = await post_keyed(
        partner, f"/api/identity/kyc/{customer_id}/upgrade", {"targetTier": "KYC_TIER_BASIC"}, "up"
    )
    assert upgraded.status_code == 200, upgraded.text
    erased = await partner.post(f"/api/identity/customers/{customer_id}/erase", {})
    assert erased.status_code == 200, erased.text

    retry = await post_keyed(partner, "/api/customers", body, key)
    error = assert_error(retry, 410, "IDEMPOTENCY_KEY_ERASED")
    assert_documented(retry)
    assert "erased" in error["message"] and "Siti" not in retry.text
    # Another body or route under the key: the same answer (nothing kept to compare).
    assert_error(
        await post_keyed(partner, "/api/customers", customer_body(), key),
        410,
        "IDEMPOTENCY_KEY_ERASED",
    )
    again = await post_keyed(
        partner, f"/api/identity/kyc/{customer_id}/upgrade", {"targetTier": "KYC_TIER_BASIC"}, "up"
    )
    assert_error(again, 410, "IDEMPOTENCY_KEY_ERASED")
    assert_documented(again)
    assert await customers_of(kyc_tier, org_id) == [customer_id]  # no one re-created
    kept = await rows(kyc_tier.core, IdempotentRequest, org_id=org_id)
    assert {(r.idempotency_key, r.response, r.request_sha256) for r in kept} == {
        (erased_key(key), None, ERASED),
        (erased_key("up"), None, ERASED),
    }
    # A new key is a new request: the partner may onboard the person again.
    fresh = await post_keyed(partner, "/api/customers", body, unique_name("key"))
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["customer"]["customerId"] != customer_id


def reason_and_metadata(error: grpc.aio.AioRpcError) -> tuple[str, dict[str, str]]:
    info = error_info(status_from_rpc_error(error))
    assert info is not None
    return info.reason, dict(info.metadata)


async def test_a_grpc_caller_is_held_to_the_declared_rate_limit(
    database_url, client, kyc_tier
) -> None:
    """An internal team calling kyc-tier directly: 10 KTP challenges per minute
    per customer, as through the gateway."""
    org_id, partner = await partner_for(database_url, client)
    customer_id, neighbour = await partner.new_customer(), await partner.new_customer()
    async with channel(kyc_tier, org_id) as direct:
        ktp = ktp_pb2_grpc.KtpServiceStub(direct)
        for _ in range(10):
            await ktp.IssueKtpChallenge(ktp_pb2.IssueKtpChallengeRequest(customer_id=customer_id))
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await ktp.IssueKtpChallenge(ktp_pb2.IssueKtpChallengeRequest(customer_id=customer_id))
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        reason, metadata = reason_and_metadata(limited.value)
        assert reason == "RATE_LIMITED"
        assert metadata["limit"] == "10 per minute per customer"
        assert 1 <= int(metadata["retry_after_seconds"]) <= 60
        # Another customer has a budget of its own.
        await ktp.IssueKtpChallenge(ktp_pb2.IssueKtpChallengeRequest(customer_id=neighbour))
    # Through the gateway the same customer is refused with the same reason.
    limited_http = await partner.post(
        "/api/identity/document/ktp/challenge", {"customerId": customer_id}
    )
    assert_error(limited_http, 429, "RATE_LIMITED")


async def test_a_deadline_cut_capture_is_completed_by_a_retry_of_the_same_bundle(
    database_url, client, kyc_tier, fakes
) -> None:
    """The caller's deadline ends the call after liveness spent the challenge
    and the nonce; the retry of the very bundle resumes it: one verification."""
    org_id, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    fakes.matcher.enroll_reference(customer_id)
    request = step_up_pb2.StepUpRequest(
        customer_id=customer_id,
        challenge_id="chl_step",
        bundle=bundle(unique_name("nonce")),
        action="transfer",
    )
    async with channel(kyc_tier, org_id) as direct:
        stub = step_up_pb2_grpc.StepUpServiceStub(direct)
        fakes.liveness.delay_seconds = 30.0
        # The call must reach liveness before its deadline: 10 s, so a loaded
        # CI machine does not cut it earlier (3 s could).
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            await stub.StepUp(request, timeout=10.0)
        assert cut.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        fakes.liveness.delay_seconds = 0.0
        await wait_for_attempt(kyc_tier, customer_id, "interrupted")
        # Generous: only the first call is meant to run out of time.
        retried = await stub.StepUp(request, timeout=30.0)
        assert retried.allow and not retried.replayed
        again = await stub.StepUp(request, timeout=30.0)
    assert again.replayed and again.verification_id == retried.verification_id
    # Liveness saw the bundle twice: first spent, then resumed (not refused).
    assert fakes.liveness.resumed == [False, True]
    recorded = await rows(
        kyc_tier.core, models.Verification, customer_id=customer_id, kind="step_up"
    )
    assert [v.verification_id for v in recorded] == [retried.verification_id]
    attempts = await rows(kyc_tier.core, models.Attempt, customer_id=customer_id, kind="step_up")
    assert sorted(a.outcome for a in attempts) == ["interrupted", "passed"]


async def wait_for_attempt(kyc_tier, customer_id: str, outcome: str) -> None:
    """The server side of a cut call finishes its attempt just after the caller gave up."""
    async with asyncio.timeout(60):  # a generous bound: a loaded CI machine is slow
        while True:
            found = await rows(kyc_tier.core, models.Attempt, customer_id=customer_id)
            if any(a.outcome == outcome for a in found):
                return
            await asyncio.sleep(0.05)


async def test_a_second_call_while_the_same_bundle_runs_is_told_to_retry(
    database_url, client, kyc_tier, fakes
) -> None:
    org_id, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    fakes.matcher.enroll_reference(customer_id)
    body = step_up_body(customer_id, unique_name("nonce"), b"frame-0")
    # Held until the second call is answered (a fixed delay could run out first under load).
    fakes.liveness.hold = asyncio.Event()
    first = asyncio.create_task(partner.post("/api/identity/auth/step-up", body))
    await wait_for_attempt(kyc_tier, customer_id, "started")
    busy = await partner.post("/api/identity/auth/step-up", body)
    fakes.liveness.hold.set()
    assert_error(busy, 409, "CAPTURE_IN_PROGRESS")
    assert (await first).status_code == 200
    again = await partner.post("/api/identity/auth/step-up", body)
    assert again.json()["replayed"] is True
    assert len(fakes.liveness.checks) == 1


async def test_a_customer_of_an_organisation_that_does_not_exist_is_refused(
    database_url, kyc_tier
) -> None:
    async with channel(kyc_tier, "org_" + "0" * 32) as direct:
        stub = customers_pb2_grpc.CustomerServiceStub(direct)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateCustomer(customers_pb2.CreateCustomerRequest(external_id="ext-1"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason_and_metadata(refused.value)[0] == "ORGANIZATION_NOT_FOUND"
