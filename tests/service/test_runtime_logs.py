"""Logs carry request id and tenant, never personal data."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from identity_platform_api.kyc_tier.v1 import api_keys_pb2, api_keys_pb2_grpc
from identity_runtime import logs
from services.kyc_tier.service import SPEC as KYC_TIER
from tests.support import channel, kyc_tier_env, start_service
from tests.support.meshauth import caller_metadata


def test_scrubber_redacts_personal_keys_and_masks_niks() -> None:
    event = {
        "event": "checked 3171234567890001 against card",
        "nik": "3171234567890001",
        "full_name": "Siti",
        "embedding": [0.1, 0.2],
        "reason": "NIK_MISMATCH_SUBMITTED",
    }
    scrubbed = logs.scrub_personal_data(None, "info", dict(event))
    assert scrubbed["nik"] == scrubbed["full_name"] == scrubbed["embedding"] == "<redacted>"
    assert "3171234567890001" not in scrubbed["event"]
    assert scrubbed["reason"] == "NIK_MISMATCH_SUBMITTED"


@pytest.fixture
async def kyc_tier_json_logs(sqlite_url: str):
    server = await start_service(
        KYC_TIER,
        kyc_tier_env(sqlite_url),
    )
    yield server
    await server.stop(0)


async def test_access_log_line_has_ids_and_no_payload(kyc_tier_json_logs, capsys) -> None:
    logs.configure("kyc-tier", "INFO", "json")
    secret = "idk_" + "a" * 32
    async with channel(kyc_tier_json_logs) as ch:
        stub = api_keys_pb2_grpc.ApiKeyServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.AuthenticateApiKey(
                api_keys_pb2.AuthenticateApiKeyRequest(secret=secret),
                metadata=[
                    ("x-request-id", "req-log-1"),
                    *caller_metadata("org_logs", scopes=("mesh",), issuer="gateway"),
                ],
            )
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    access = [
        line
        for line in lines
        if line.get("event") == "rpc" and line.get("request_id") == "req-log-1"
    ]
    assert access, lines
    assert access[0]["org_id"] == "org_logs"
    assert access[0]["status"] == "UNAUTHENTICATED"
    assert access[0]["reason"] == "API_KEY_INVALID"
    assert access[0]["rpc"].endswith("ApiKeyService/AuthenticateApiKey")
    assert secret not in json.dumps(lines)


async def test_health_checks_are_not_logged(kyc_tier_json_logs, capsys) -> None:
    logs.configure("kyc-tier", "INFO", "json")
    async with channel(kyc_tier_json_logs) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        answer = await stub.Check(
            health_pb2.HealthCheckRequest(), metadata=[("x-request-id", "req-hc")]
        )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        await api_keys_pb2_grpc.ApiKeyServiceStub(ch).ListApiKeys(
            api_keys_pb2.ListApiKeysRequest(),
            metadata=[("x-request-id", "req-list"), *caller_metadata("org_logs", issuer="gateway")],
        )
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    logged = {line.get("request_id") for line in lines if line.get("event") == "rpc"}
    assert "req-list" in logged
    assert "req-hc" not in logged
