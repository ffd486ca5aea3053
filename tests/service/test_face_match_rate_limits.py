"""Face Match's declared rate limits through the real gateway, a real
face-match behind it (black-box probe 6, D9: 60 creates in 0.4 s, unlimited
redeliveries and token requests): past the limit the answer is 429
RATE_LIMITED with Retry-After, documented for the operation, and the
service counts the per-organisation limits again for callers that skip the
gateway."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from identity_platform_api.face_match.v1 import submissions_pb2, submissions_pb2_grpc
from identity_runtime.status import error_info, status_from_rpc_error
from identity_store.types import utcnow
from services.face_match.oauth import new_client
from services.face_match.service import SPEC as FACE_MATCH
from tests.support import channel, start_service
from tests.support.face_match import env
from tests.support.gateway import (
    assert_documented,
    assert_error,
    bearer,
    gateway_client,
    gateway_settings,
)

ORG = "org_fm_limits"
SUBMISSIONS = "/api/face-match/submissions"
CREATE = {"correlationId": "limit-1", "referenceType": "REFERENCE_TYPE_KTP"}


@pytest.fixture
async def service(database_url: str, tmp_path: Path):
    server = await start_service(FACE_MATCH, env(database_url, tmp_path / "bucket"))
    yield server
    await server.stop(0)


async def client_credentials(service, org_id: str = ORG) -> dict[str, str]:
    view, secret = await service.core.database.run(
        lambda s: new_client(s, org_id, "backend", service.settings.oauth_client_pepper, utcnow())
    )
    return {
        "grant_type": "client_credentials",
        "client_id": view.client_id,
        "client_secret": secret,
    }


def assert_limited(response, limit: str) -> None:
    error = assert_error(response, 429, "RATE_LIMITED")
    assert error["metadata"]["limit"] == limit, error
    assert int(response.headers["retry-after"]) >= 1
    assert_documented(response)


async def test_creating_and_redelivering_are_limited_per_organisation(service) -> None:
    async with gateway_client(gateway_settings({"face_match": service.address})) as gateway:
        issued = await gateway.post("/api/oauth/token", json=await client_credentials(service))
        assert issued.status_code == 200, issued.text
        headers = bearer(issued.json()["access_token"])
        other_issued = await gateway.post(
            "/api/oauth/token", json=await client_credentials(service, "org_fm_limits_b")
        )
        other = bearer(other_issued.json()["access_token"])
        # 600 a minute: creating the same submission again spends it too.
        for _ in range(600):
            created = await gateway.post(SUBMISSIONS, json=CREATE, headers=headers)
            assert created.status_code == 200, created.text
        assert_limited(
            await gateway.post(SUBMISSIONS, json=CREATE, headers=headers), "600 per minute per org"
        )
        # Another organisation has its own budget.
        assert (await gateway.post(SUBMISSIONS, json=CREATE, headers=other)).status_code == 200
        # 30 redeliveries a minute (here of a submission not finished: 409).
        redeliver = SUBMISSIONS + "/limit-1/callback/redeliver"
        for _ in range(30):
            answer = await gateway.post(redeliver, json={}, headers=headers)
            assert_error(answer, 409, "SUBMISSION_NOT_FINISHED")
        assert_limited(
            await gateway.post(redeliver, json={}, headers=headers), "30 per minute per org"
        )


async def test_token_requests_are_limited_per_address(service) -> None:
    async with gateway_client(gateway_settings({"face_match": service.address})) as gateway:
        credentials = await client_credentials(service)
        for _ in range(60):
            issued = await gateway.post("/api/oauth/token", json=credentials)
            assert issued.status_code == 200, issued.text
        refused = await gateway.post("/api/oauth/token", json=credentials)
        assert refused.status_code == 429, refused.text
        body = refused.json()
        assert body["error"] == "temporarily_unavailable" and body["reason"] == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["cache-control"] == "no-store"
        assert_documented(refused)
    # Another address (another gateway's count here) is not affected.
    async with gateway_client(gateway_settings({"face_match": service.address})) as gateway:
        assert (await gateway.post("/api/oauth/token", json=credentials)).status_code == 200


async def test_face_match_counts_the_org_limits_again_without_the_gateway(service) -> None:
    async with channel(service, "org_fm_limits_grpc") as ch:
        stub = submissions_pb2_grpc.SubmissionServiceStub(ch)
        request = submissions_pb2.RedeliverCallbackRequest(correlation_id="nothing-here")
        for _ in range(30):
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.RedeliverCallback(request)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await stub.RedeliverCallback(request)
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_info(status_from_rpc_error(limited.value))
        assert info is not None and info.reason == "RATE_LIMITED"
