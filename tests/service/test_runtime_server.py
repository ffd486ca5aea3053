"""The shared runtime on a real service: health, reflection, errors, UNIMPLEMENTED."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from identity_platform_api.kyc_tier.v1 import (
    api_keys_pb2,
    api_keys_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from identity_runtime import mesh
from identity_runtime.server import RunningServer, ServiceSpec
from identity_runtime.status import error_info, status_from_rpc_error
from services.kyc_tier import servicer
from services.kyc_tier.bootstrap import build
from services.kyc_tier.service import SPEC as KYC_TIER
from services.kyc_tier.settings import KycTierSettings
from tests.support import channel, kyc_tier_env, start_service
from tests.support.meshauth import caller_metadata


def gateway_itself() -> list[tuple[str, str]]:
    """The gateway resolving an API key: a mesh call of its own (a fresh token)."""
    return caller_metadata("", scopes=("mesh",), actor="service:gateway", issuer="gateway")


@pytest.fixture
async def kyc_tier(sqlite_url: str):
    server = await start_service(KYC_TIER, kyc_tier_env(sqlite_url))
    yield server
    await server.stop(0)


async def test_health_reports_serving_for_every_registered_service(kyc_tier) -> None:
    async with channel(kyc_tier) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        overall = await stub.Check(health_pb2.HealthCheckRequest(service=""))
        assert overall.status == health_pb2.HealthCheckResponse.SERVING
        for name in KYC_TIER.service_names:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, name


async def test_reflection_lists_the_contract_services(kyc_tier) -> None:
    async with channel(kyc_tier) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        async for response in responses:
            names = {s.name for s in response.list_services_response.service}
            break
    assert set(KYC_TIER.service_names) <= names
    assert "grpc.health.v1.Health" in names


async def test_domain_error_becomes_status_with_one_error_info(kyc_tier) -> None:
    async with channel(kyc_tier) as ch:
        stub = api_keys_pb2_grpc.ApiKeyServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.AuthenticateApiKey(
                api_keys_pb2.AuthenticateApiKeyRequest(secret="idk_nope"),
                metadata=[("x-request-id", "req-123"), *gateway_itself()],
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = error_info(status_from_rpc_error(caught.value))
    assert info is not None
    assert (info.domain, info.reason) == ("identity-platform", "API_KEY_INVALID")
    assert info.metadata["request_id"] == "req-123"


async def test_unimplemented_rpc_answers_a_clear_status(sqlite_url: str) -> None:
    # Every contract service of kyc-tier has its servicer now: one registered
    # without its servicer answers UNIMPLEMENTED from its generated base.
    partial = ServiceSpec.from_mesh(
        mesh.KYC_TIER,
        settings_class=KycTierSettings,
        build=build,
        servicers=[servicer.ApiKeyServicer],
    )
    server = await start_service(partial, kyc_tier_env(sqlite_url))
    try:
        await _assert_list_webhooks_unimplemented(server)
    finally:
        await server.stop(0)


async def _assert_list_webhooks_unimplemented(server: RunningServer) -> None:
    async with channel(server) as ch:
        stub = webhooks_pb2_grpc.WebhookServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListWebhooks(webhooks_pb2.ListWebhooksRequest())
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    info = error_info(status_from_rpc_error(caught.value))
    assert info.reason == "NOT_IMPLEMENTED"
    assert info.metadata["rpc"] == "identity.kyc_tier.v1.WebhookService/ListWebhooks"
    assert "not implemented yet" in caught.value.details()


async def test_calls_without_an_organisation_are_refused(kyc_tier) -> None:
    async with channel(kyc_tier) as ch:
        stub = api_keys_pb2_grpc.ApiKeyServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListApiKeys(
                api_keys_pb2.ListApiKeysRequest(), metadata=caller_metadata("", issuer="gateway")
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(status_from_rpc_error(caught.value)).reason == "TENANT_MISSING"


async def test_a_bare_organisation_header_is_not_a_credential(kyc_tier) -> None:
    async with channel(kyc_tier, credentials=False) as ch:
        stub = api_keys_pb2_grpc.ApiKeyServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListApiKeys(
                api_keys_pb2.ListApiKeysRequest(),
                metadata=[("x-identity-org", "org_1"), ("x-identity-scopes", "internal")],
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(status_from_rpc_error(caught.value)).reason == "CALLER_UNAUTHENTICATED"
