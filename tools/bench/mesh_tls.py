"""Mutual TLS overhead on step-up: the same requests through a mesh with and without mTLS.

    .venv/bin/python tools/bench/mesh_tls.py [--customers 10] [--per-customer 5]
        [--database sqlite|postgres]

Two one-machine meshes (`identity up`, six services and the gateway each, as
separate processes) run at once, each in a data directory of its own: "mtls"
as shipped (mutual TLS on every gRPC hop, certificates from its local CA, a
caller token on every call) and "plaintext" with `<PREFIX>_MESH_TLS=off` on
every component (caller tokens still on: they are not optional). Each timed
request is one `POST /api/identity/auth/step-up` through the gateway (gateway
-> kyc-tier -> capture-quality, liveness, embedding, matching; audit through
the outbox), with the flash challenge fetched before the clock starts.
Requests alternate between the two meshes, so the machine's noise hits both
alike. Prints medians, p99 and the mtls/plaintext ratio of the medians;
writes JSON to bench-results/. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
from common import ROOT, alternating, publish

from identity_capture.sdk import SdkSigner
from identity_runtime import mesh
from tools.bench.step_up import (
    bundle_json,
    capture,
    enrol_distinct,
    enrol_images,
    percentile,
    start_mesh,
)

PLAINTEXT = {f"{p}_MESH_TLS": "off" for p in [*(s.env_prefix for s in mesh.SERVICES), "GATEWAY"]}


class Mesh:
    def __init__(self, stack: ExitStack, name: str, database: str, extra: dict[str, str]):
        self.name = name
        base, key, _ = start_mesh(stack, database, extra)
        self.client = stack.enter_context(
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        )
        self.customers: list[tuple[str, SdkSigner, np.ndarray]] = []
        self.ms: list[float] = []
        self.allowed = 0

    def post(self, path: str, body: dict) -> dict:
        reply = self.client.post(path, json=body)
        if reply.status_code != 200:
            raise SystemExit(f"{self.name} {path}: {reply.status_code} {reply.text[:300]}")
        return reply.json()

    def enrol(self, count: int, references: list[np.ndarray]) -> None:
        """Distinct faces (step_up.enrol_distinct): one face twice is held."""
        self.customers = enrol_distinct(self.client, count, references, self.name)

    def step_up(self, customer_index: int) -> None:
        """A step-up of the customer by a new capture of its reference photo."""
        customer, signer, image = self.customers[customer_index]
        challenge = self.post(
            "/api/identity/face/flash-challenge",
            {"customerId": customer, "purpose": "CHALLENGE_PURPOSE_STEP_UP"},
        )["challenge"]
        baseline, flashes = capture(image, [c["hex"] for c in challenge["sequence"]])
        body = {
            "customerId": customer,
            "challengeId": challenge["challengeId"],
            "bundle": bundle_json(signer, challenge, baseline, flashes),
        }
        started = time.perf_counter()
        decision = self.post("/api/identity/auth/step-up", body)
        self.ms.append((time.perf_counter() - started) * 1000)
        self.allowed += bool(decision["allow"])

    def summary(self) -> dict:
        return {
            "requests": len(self.ms),
            "allowed": self.allowed,
            "p50_ms": percentile(self.ms, 50),
            "p99_ms": percentile(self.ms, 99),
            "max_ms": max(self.ms),
        }


def main() -> int:
    import cv2

    from identity_inference.manifest import load_catalogue, resolve_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10)
    parser.add_argument(
        "--per-customer", type=int, default=5, help="step-ups per customer and mesh"
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args()

    yunet = cv2.FaceDetectorYN.create(
        str(resolve_path(load_catalogue()["yunet-2023mar"])), "", (320, 320), 0.6
    )
    references = enrol_images(yunet)
    with ExitStack() as stack:
        meshes = [
            Mesh(stack, "mtls", args.database, {}),
            Mesh(stack, "plaintext", args.database, PLAINTEXT),
        ]
        for one in meshes:
            one.enrol(args.customers, references)
        for customer_index, order in alternating(args.per_customer, range(args.customers), meshes):
            for one in order:
                one.step_up(customer_index)
        mtls, plaintext = (m.summary() for m in meshes)
    results = {
        "database": args.database,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "mtls": mtls,
        "plaintext": plaintext,
        "ratio_p50": mtls["p50_ms"] / plaintext["p50_ms"],
        "ratio_p99": mtls["p99_ms"] / plaintext["p99_ms"],
    }
    report = [
        f"step-up through the gateway, {mtls['requests']} requests per mesh "
        f"({args.database}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})",
        f"  mutual TLS  p50 {mtls['p50_ms']:7.1f} ms  p99 {mtls['p99_ms']:7.1f} ms  "
        f"allowed {mtls['allowed']}",
        f"  plaintext   p50 {plaintext['p50_ms']:7.1f} ms  p99 {plaintext['p99_ms']:7.1f} ms  "
        f"allowed {plaintext['allowed']}",
        f"  ratio mTLS/plaintext: p50 {results['ratio_p50']:.3f}, p99 {results['ratio_p99']:.3f}",
    ]
    publish(args.out / "mesh-tls.json", results, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
