"""Defence in depth: if the validation layer ever missed a field, the
database error it lets through must still leak nothing. kyc-tier on
PostgreSQL, with the layer switched off for the test, gets a NUL in a full
name (PostgreSQL refuses it): the call fails with a bare INTERNAL, and
neither the logged traceback nor the error names the customer, their email,
phone or NIK (SQL parameters are hidden; the root scrubber masks the rest)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from identity_platform_api.kyc_tier.v1 import customers_pb2, customers_pb2_grpc
from identity_runtime import interceptors, logs
from services.kyc_tier.service import SPEC as KYC_TIER
from tests.support import channel, kyc_tier_env, start_service
from tests.support.gateway import create_org_and_key

NAME = "Siti Rahayu"
EMAIL = "siti.rahayu@example.co.id"
PHONE = "+6281234567890"
NIK = "3273024107950003"


async def test_a_database_error_behind_a_missed_field_leaks_nothing(
    postgres_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(interceptors, "validate", lambda message: None)
    org_id, _, _ = await asyncio.to_thread(
        create_org_and_key, postgres_url, "Leak Bank", ("public",)
    )
    server = await start_service(KYC_TIER, kyc_tier_env(postgres_url))
    logs.configure("kyc-tier", "INFO", "json")
    try:
        async with channel(server, org_id) as ch:
            stub = customers_pb2_grpc.CustomerServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateCustomer(
                    customers_pb2.CreateCustomerRequest(
                        external_id="leak-1",
                        full_name=f"{NAME}\x00",
                        email=EMAIL,
                        phone=PHONE,
                        nik=NIK,
                    ),
                    metadata=[("x-identity-org", org_id)],
                )
    finally:
        await server.stop(0)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    logged = capsys.readouterr().err
    # The failure was logged with its traceback (so the scan below means something).
    assert "unhandled error" in logged and "Traceback" in logged
    told = str(caught.value.details()) + repr(caught.value.trailing_metadata())
    for secret in (NAME, "Rahayu", EMAIL, PHONE, PHONE.removeprefix("+"), NIK):
        assert secret not in logged, secret
        assert secret not in told, secret
