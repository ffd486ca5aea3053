#!/usr/bin/env python3
"""Gateway overhead: the same RPC called through the gateway (HTTP/JSON) and
directly (gRPC), side by side in one run.

    .venv/bin/python tools/bench_gateway.py [--requests 500]

Starts a real kyc-tier (SQLite in a temporary directory) and the real gateway
under uvicorn on free ports, creates an organisation and an internal key, then
times `ListApiKeys` sequentially both ways (API key resolved once, then
cached). Everything runs in this one process on this machine, client
included, so the figures are upper bounds of the gateway's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def run(requests: int) -> None:
    import grpc
    import httpx

    from gateway.server import start
    from identity_cli.schema import migrate_all
    from identity_platform_api.kyc_tier.v1 import api_keys_pb2, api_keys_pb2_grpc
    from identity_runtime import logs, mesh
    from tests.support import kyc_tier_env, start_service
    from tests.support.gateway import create_org_and_key, gateway_settings, spec_of
    from tests.support.meshauth import caller_metadata

    logs.configure("bench", "WARNING", "console")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'identity.db'}"
        migrate_all(url)
        org_id, api_key_id, secret = create_org_and_key(url, "Bench Org", ("internal",))
        kyc_tier = await start_service(
            spec_of(mesh.KYC_TIER), {**kyc_tier_env(url), "KYC_TIER_LOG_LEVEL": "WARNING"}
        )
        settings = gateway_settings(
            {"kyc_tier": kyc_tier.address}, access_log="false", log_level="WARNING"
        )
        gateway = await start(settings.replace(port=0))

        def metadata() -> list[tuple[str, str]]:
            # What the gateway sends: a fresh token for the key's org, actor and scopes.
            return caller_metadata(
                org_id, actor=f"api_key:{api_key_id}", scopes=("internal",), issuer="gateway"
            )

        direct_ms: list[float] = []
        gateway_ms: list[float] = []
        try:
            async with (
                grpc.aio.insecure_channel(kyc_tier.address) as channel,
                httpx.AsyncClient(
                    base_url=f"http://{gateway.address}",
                    headers={"Authorization": f"Bearer {secret}"},
                ) as client,
            ):
                stub = api_keys_pb2_grpc.ApiKeyServiceStub(channel)
                # Warm-up: connections, the key cache, lazy imports.
                for _ in range(20):
                    await stub.ListApiKeys(api_keys_pb2.ListApiKeysRequest(), metadata=metadata())
                    (await client.get("/api/identity/api-keys")).raise_for_status()
                # Interleaved, so both see the same machine load.
                for _ in range(requests):
                    started = time.perf_counter()
                    await stub.ListApiKeys(api_keys_pb2.ListApiKeysRequest(), metadata=metadata())
                    direct_ms.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    response = await client.get("/api/identity/api-keys")
                    gateway_ms.append((time.perf_counter() - started) * 1000)
                    response.raise_for_status()
        finally:
            await gateway.stop()
            await kyc_tier.stop(0)
    for name, values in (("direct gRPC", direct_ms), ("through the gateway", gateway_ms)):
        print(
            f"{name:>20}: p50 {statistics.median(values):6.2f} ms   "
            f"p99 {_percentile(values, 0.99):6.2f} ms   (n={len(values)})"
        )
    print(
        f"{'gateway / direct':>20}: "
        f"p50 x{statistics.median(gateway_ms) / statistics.median(direct_ms):.2f}   "
        f"added p50 {statistics.median(gateway_ms) - statistics.median(direct_ms):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500)
    asyncio.run(run(parser.parse_args().requests))


if __name__ == "__main__":
    main()
