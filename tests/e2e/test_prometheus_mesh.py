"""`identity up --prometheus`: a real Prometheus (Debian's) scrapes the running
mesh while step-up traffic flows, evaluates the project's recording rules, and
answers the step-up availability and latency SLIs through its HTTP API."""

from __future__ import annotations

import asyncio
import math
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.e2e.test_cli_up import IDENTITY, free_ports, up_environment, wait_for_line
from tests.e2e.test_onboarding import FACES, Partner, b64, selfie, selfie_capture
from tests.support.biometrics import jpeg

pytestmark = [pytest.mark.slow, pytest.mark.models]

JOBS = ("capture-quality", "liveness", "embedding", "matching", "kyc-tier", "audit", "gateway")
STEP_UP = 'route="/api/identity/auth/step-up"'


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for_value(prometheus: str, expr: str, timeout: float = 90) -> float:
    """The expression's single value once Prometheus has one (scrapes and rule
    evaluations are asynchronous: poll the API, bounded)."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = query(prometheus, expr)
        if len(seen) == 1 and not math.isnan(float(seen[0]["value"][1])):
            return float(seen[0]["value"][1])
        time.sleep(0.5)
    raise AssertionError(f"{expr}: no value within {timeout}s (last answer {seen})")


async def step_ups(gateway: str, secret: str, count: int, external_id: str) -> list[int]:
    """`count` step-ups of the same person against a partner's reference image
    (allowed) and one without any reference (refused 4xx): real traffic through
    capture-quality, liveness, embedding and matching."""
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        partner = Partner(SimpleNamespace(client=client), secret)  # type: ignore[arg-type]
        customer_id = await partner.new_customer(external_id)
        reference = jpeg(selfie("img1.jpg"))
        statuses = []
        for _ in range(count):
            challenge = await partner.challenge(customer_id, "CHALLENGE_PURPOSE_STEP_UP")
            body = {
                "customerId": customer_id,
                "challengeId": challenge["challengeId"],
                "bundle": selfie_capture(partner.signer, challenge, selfie("img4.jpg")),
                "action": "transfer",
                "referenceImage": {"data": b64(reference)},
            }
            response = await partner.post("/api/identity/auth/step-up", body)
            assert response.status_code == 200, response.text[:500]
            assert response.json()["allow"] is True, response.text[:500]
            statuses.append(response.status_code)
        refused, _, _ = await partner.step_up(customer_id, selfie("img4.jpg"))
        statuses.append(refused.status_code)
        return statuses


def test_prometheus_scrapes_the_mesh_and_answers_the_step_up_slis(tmp_path: Path) -> None:
    assert FACES.is_dir()
    env, ports = up_environment(tmp_path)
    metrics_ports = free_ports(len(JOBS) + 1)
    prefixes = ["CAPTURE_QUALITY", "LIVENESS", "EMBEDDING", "MATCHING", "KYC_TIER", "AUDIT"]
    for prefix, port in zip([*prefixes, "GATEWAY"], metrics_ports, strict=False):
        env[f"{prefix}_METRICS_PORT"] = str(port)
    prometheus_port = metrics_ports[-1]
    # The SLIs read what happened; a step-up slowed past the default 10 s deadline
    # by a loaded test machine would be a 504 the test did not cause.
    env["GATEWAY_DEFAULT_DEADLINE_SECONDS"] = "60"
    process = subprocess.Popen(
        [
            IDENTITY,
            "up",
            "--prometheus",
            "--prometheus-port",
            str(prometheus_port),
            "--prometheus-interval",
            "1s",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = "\n".join(wait_for_line(process, "press Ctrl-C", timeout=300))
        prometheus = f"http://127.0.0.1:{prometheus_port}"
        assert f"prometheus       {prometheus}" in printed
        secret = next(
            word
            for line in printed.splitlines()
            if "API key" in line
            for word in line.split()
            if word.startswith("idk_")
        )
        gateway = f"http://127.0.0.1:{ports['GATEWAY']}"

        # Every component is a scrape target that is up. (A filter, so the poll waits
        # for a successful scrape: with a 1 s interval a scrape of a loaded machine
        # can time out once, and its `up` reads 0 until the next.)
        for job in JOBS:
            assert wait_for_value(prometheus, f'up{{job="{job}"}} == 1') == 1, job
        # The project's rules are loaded.
        rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        names = {r["name"] for g in rules for r in g["rules"]}
        assert {"sli:stepup_availability:ratio_rate5m", "IdentityCircuitBreakerOpen"} <= names

        # A first step-up creates the series; Prometheus must see them before
        # the next ones so that rate() has a before and an after.
        first = asyncio.run(step_ups(gateway, secret, 1, "prometheus-1"))
        # Allowed, then refused for want of an enrolled reference (a 4xx: available).
        assert first[0] == 200 and 400 <= first[1] < 500
        wait_for_value(prometheus, f"sum(identity_http_requests_total{{{STEP_UP}}})")
        more = asyncio.run(step_ups(gateway, secret, 2, "prometheus-2"))
        assert more[:2] == [200, 200] and 400 <= more[2] < 500

        # Availability: no 5xx among the step-ups, so the SLI is 1.
        availability = wait_for_value(prometheus, "sli:stepup_availability:ratio_rate5m")
        assert availability == 1.0
        # Latency: the p95 of real step-ups, a finite positive number of seconds,
        # and the share within 1 s is a ratio.
        p95 = wait_for_value(prometheus, "sli:stepup_latency:p95_5m")
        # A latency, not a timing bound: a loaded machine may be slow.
        assert p95 > 0
        within = wait_for_value(prometheus, "sli:stepup_latency:ratio_rate5m")
        assert 0 <= within <= 1
        # The decisions reached the metrics with their outcome, from kyc-tier.
        # (A filter, so the poll waits for the scrape that saw the third step-up.)
        allowed = wait_for_value(
            prometheus,
            'sum(identity_decisions_total{job="kyc-tier",step="step_up",outcome="allow"}) >= 3',
        )
        assert allowed >= 3
        # No customer id ever became a label.
        series = httpx.get(
            f"{prometheus}/api/v1/series",
            params={"match[]": '{__name__=~"identity_.+"}'},
            timeout=10,
        ).json()["data"]
        assert not any("cus_" in value for s in series for value in s.values())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
