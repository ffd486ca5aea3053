"""Prometheus metrics on a real service and a real gateway: the metrics port
serves the exposition, calls are counted by RPC / route template and code,
and no secret, customer id or path ever becomes a label."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import server as gateway_server
from identity_platform_api.kyc_tier.v1 import api_keys_pb2, api_keys_pb2_grpc
from identity_runtime import metrics
from identity_runtime.server import RunningServer
from identity_runtime.settings import SettingsError
from services.kyc_tier.service import SPEC as KYC_TIER
from tests.support import channel, kyc_tier_env, start_service
from tests.support.gateway import gateway_settings
from tests.support.meshauth import caller_metadata

AUTHENTICATE = "identity.kyc_tier.v1.ApiKeyService/AuthenticateApiKey"


async def scrape(port: int) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """The exposition text and every sample by (name, labels)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return response.text, samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def kyc_tier(database_url: str) -> AsyncIterator[RunningServer]:
    env = {**kyc_tier_env(database_url), "KYC_TIER_METRICS_PORT": "0"}
    server = await start_service(KYC_TIER, env)
    yield server
    await server.stop(0)


async def test_a_service_counts_each_rpc_by_code_on_its_metrics_port(kyc_tier) -> None:
    assert kyc_tier.metrics_server is not None
    port = kyc_tier.metrics_server.port
    _, before = await scrape(port)
    secret = "idk_not-a-real-key-0123456789"
    async with channel(kyc_tier) as ch:
        stub = api_keys_pb2_grpc.ApiKeyServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.AuthenticateApiKey(
                api_keys_pb2.AuthenticateApiKeyRequest(secret=secret),
                metadata=caller_metadata(
                    "", scopes=("mesh",), actor="service:gateway", issuer="gateway"
                ),
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    text, after = await scrape(port)
    labels = {"service": "kyc-tier", "rpc": AUTHENTICATE, "code": "UNAUTHENTICATED"}
    counted = value(after, "identity_rpc_requests_total", **labels) - value(
        before, "identity_rpc_requests_total", **labels
    )
    assert counted == 1
    timed = {"service": "kyc-tier", "rpc": AUTHENTICATE}
    assert (
        value(after, "identity_rpc_duration_seconds_count", **timed)
        - value(before, "identity_rpc_duration_seconds_count", **timed)
        == 1
    )
    # Health checks are infrastructure: not counted as RPCs.
    assert "grpc.health.v1" not in text
    # The presented secret is nowhere in the exposition.
    assert secret not in text
    # The database pool of the service is measured.
    dialect = "postgresql" if "postgresql" in kyc_tier.settings.database_url else "sqlite"
    assert value(after, "identity_db_pool_capacity", dialect=dialect) >= 1


async def test_every_catalogued_metric_is_served_even_before_it_is_observed(kyc_tier) -> None:
    assert kyc_tier.metrics_server is not None
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{kyc_tier.metrics_server.port}/metrics")).text
    declared = {f.name for f in text_string_to_metric_families(text)}
    for name in (
        "identity_rpc_requests",
        "identity_http_requests",
        "identity_model_stage_duration_seconds",
        "identity_decisions",
        "identity_pad_live_score",
        "identity_match_score",
        "identity_queue_depth",
        "identity_queue_oldest_age_seconds",
        "identity_circuit_breaker_state",
        "identity_seal_failures",
        "identity_audit_append_failures",
        "identity_db_pool_connections_in_use",
    ):
        assert name in declared, name


async def test_the_metrics_port_refuses_a_taken_port(sqlite_url: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        env = {**kyc_tier_env(sqlite_url), "KYC_TIER_METRICS_PORT": str(taken)}
        with pytest.raises(OSError, match=f"kyc-tier: metrics: cannot listen on 127.0.0.1:{taken}"):
            await start_service(KYC_TIER, env)


async def test_a_metrics_port_out_of_range_is_refused_at_start_up(sqlite_url: str) -> None:
    env = {**kyc_tier_env(sqlite_url), "KYC_TIER_METRICS_PORT": "70000"}
    with pytest.raises(SettingsError, match="KYC_TIER_METRICS_PORT: 70000 is not a TCP port"):
        await start_service(KYC_TIER, env)
    with pytest.raises(SettingsError, match="GATEWAY_METRICS_PORT"):
        gateway_settings({}, metrics_port="-1")


async def test_the_gateway_counts_by_route_template_never_by_path(kyc_tier) -> None:
    settings = gateway_settings({"kyc_tier": kyc_tier.address}, port="0", metrics_port="0")
    running = await gateway_server.start(settings)
    try:
        gateway = running.server.config.app.state.gateway
        assert gateway.metrics_server is not None
        port = gateway.metrics_server.port
        _, before = await scrape(port)
        customer = "cus_0123456789abcdef0123456789ab"
        async with httpx.AsyncClient(base_url=f"http://{running.address}") as client:
            refused = await client.get(
                f"/api/identity/customers/{customer}",
                headers={"Authorization": "Bearer idk_wrong-key-0123456789"},
            )
            missing = await client.get(f"/api/no-such-route/{customer}")
        assert refused.status_code == 401
        assert missing.status_code == 404
        text, after = await scrape(port)
        labels = {
            "route": "/api/identity/customers/{customer_id}",
            "method": "GET",
            "status": "401",
            "code": "UNAUTHENTICATED",
        }
        assert (
            value(after, "identity_http_requests_total", **labels)
            - value(before, "identity_http_requests_total", **labels)
            == 1
        )
        unmatched = {"route": "unmatched", "method": "other", "status": "404", "code": "NOT_FOUND"}
        assert (
            value(after, "identity_http_requests_total", **unmatched)
            - value(before, "identity_http_requests_total", **unmatched)
            == 1
        )
        assert customer not in text
        assert "wrong-key" not in text
    finally:
        await running.stop()
    assert gateway.metrics_server is None


def test_exported_names_lists_each_sample_name_of_the_catalogue() -> None:
    names = metrics.exported_names()
    assert "identity_rpc_requests_total" in names
    assert "identity_rpc_duration_seconds_bucket" in names
    assert "identity_circuit_breaker_state" in names
    assert "identity_rpc_requests" not in names
