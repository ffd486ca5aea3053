"""Clients generated from the published OpenAPI document, as partners make them.

- Python: `openapi-python-client` (the dev extra) generates `identity_api_client`;
  `tests/support/generated_client_flow.py` uses it and passes `mypy --strict`
  (the generator's own module bodies are not ours to fix: ignore_errors on
  them, their types still checked against); an empty `CreateCustomerRequest()`
  does not type-check; it onboards a customer to premium through the gateway.
- TypeScript: `openapi-typescript` writes the types, `openapi-fetch` calls with
  them (tests/support/openapi_ts, pinned, installed by tools/dev);
  `flow.ts` and `checks.ts` pass `tsc --strict`, `empty.ts` (an empty required
  body) does not; node runs `flow.js` through onboarding against the gateway
  listening on a port.
- A reason the document does not list parses in both (the Python model, the
  TypeScript type), since `reason` is an open string.

The customer's phone is the test (tests/support/phone.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import server as gateway_server
from gateway.openapi import build_document
from gateway.routing import RouteTable, build_routes
from identity_runtime import mesh as mesh_catalogue
from tests.e2e.test_onboarding import KTP_NIK
from tests.support.gateway import addresses_of, create_org_and_key, gateway_settings
from tests.support.mesh import gateway_tls, mesh_env, running_mesh
from tests.support.phone import Phone

pytestmark = [pytest.mark.e2e, pytest.mark.models, pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TS_SUPPORT = ROOT / "tests" / "support" / "openapi_ts"
BIN = Path(sys.executable).parent
MYPY_INI = """[mypy]
strict = True

[mypy-identity_api_client.*]
# The generator's module bodies (context-manager signatures, a shadowed name).
ignore_errors = True
"""
# Each hop's default deadline: generous on a loaded 2-core machine.
SLOW_MACHINE = {f"{s.env_prefix}_DEFAULT_DEADLINE_SECONDS": "60" for s in mesh_catalogue.SERVICES}


def run(*command: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": str(cwd), "PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check:
        assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the document, both generated clients and the checks' inputs."""
    root = tmp_path_factory.mktemp("generated")
    document = build_document(RouteTable(build_routes(), mesh_catalogue.BY_PACKAGE))
    (root / "openapi.json").write_text(json.dumps(document))
    run(BIN / "openapi-python-client", "generate", "--path", "openapi.json",
        "--output-path", "identity_api_client", "--meta", "none", cwd=root)  # fmt: skip
    shutil.copy(ROOT / "tests" / "support" / "generated_client_flow.py", root)
    (root / "mypy.ini").write_text(MYPY_INI)
    ts = root / "ts"
    ts.mkdir()
    for name in ("flow.ts", "checks.ts", "empty.ts", "tsconfig.json", "package.json"):
        shutil.copy(TS_SUPPORT / name, ts)
    if not (TS_SUPPORT / "node_modules" / ".bin" / "tsc").is_file():
        pytest.fail("tests/support/openapi_ts has no node_modules: `tools/dev setup` installs it")
    (ts / "node_modules").symlink_to(TS_SUPPORT / "node_modules")
    run("node_modules/.bin/openapi-typescript", root / "openapi.json", "-o", "schema.d.ts", cwd=ts)
    # flow.ts and checks.ts under tsc --strict (tsconfig.json), compiled to out/.
    run("node_modules/.bin/tsc", "-p", "tsconfig.json", cwd=ts)
    return root


def test_the_python_client_passes_mypy_strict_and_requires_its_fields(generated: Path) -> None:
    checked = run(BIN / "mypy", "--config-file", "mypy.ini", "--no-incremental",
                  "generated_client_flow.py", cwd=generated)  # fmt: skip
    assert "Success" in checked.stdout
    (generated / "empty.py").write_text(
        "from identity_api_client.models import CreateCustomerRequest\nCreateCustomerRequest()\n"
    )
    refused = run(BIN / "mypy", "--config-file", "mypy.ini", "--no-incremental", "empty.py",
                  cwd=generated, check=False)  # fmt: skip
    assert refused.returncode == 1
    assert 'Missing positional argument "external_id"' in refused.stdout


def test_the_typescript_types_pass_tsc_strict_and_require_their_fields(generated: Path) -> None:
    ts = generated / "ts"
    assert (ts / "out" / "flow.js").is_file() and (ts / "out" / "checks.js").is_file()
    refused = run("node_modules/.bin/tsc", "--strict", "--noEmit", "--module", "NodeNext",
                  "--moduleResolution", "NodeNext", "--target", "ES2022", "--types", "node",
                  "empty.ts", cwd=ts, check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "TS2741" in refused.stdout and "'externalId' is missing" in refused.stdout


def test_a_reason_added_later_parses_in_the_python_client(generated: Path) -> None:
    probe = (
        "from identity_api_client.models import Error\n"
        "body = {'error': {'code': 400, 'status': 'FAILED_PRECONDITION',\n"
        "        'reason': 'A_REASON_ADDED_NEXT_YEAR', 'domain': 'identity-platform',\n"
        "        'message': 'm', 'metadata': {}, 'requestId': 'r'}}\n"
        "print(Error.from_dict(body).error.reason)\n"
    )
    assert run(sys.executable, "-c", probe, cwd=generated).stdout.strip() == (
        "A_REASON_ADDED_NEXT_YEAR"
    )


async def test_both_generated_clients_onboard_a_customer(generated: Path, tmp_path: Path) -> None:
    async with running_mesh(tmp_path, extra_env=SLOW_MACHINE) as e2e:
        # The gateway listening on a port, as partners reach it.
        settings = gateway_settings(
            addresses_of(e2e.servers),
            port="0",
            default_deadline_seconds="60",
            **gateway_tls(mesh_env(e2e.database_url, tmp_path)),
        )
        listening = await gateway_server.start(settings)
        base_url = f"http://{listening.address}"
        try:
            # Python.
            _, _, secret = await asyncio.to_thread(
                create_org_and_key, e2e.database_url, "Generated Python", ("public",)
            )
            sys.path.insert(0, str(generated))
            try:
                from generated_client_flow import onboard
                from identity_api_client import AuthenticatedClient
            finally:
                sys.path.remove(str(generated))
            client = AuthenticatedClient(
                base_url=base_url, token=secret, timeout=httpx.Timeout(120.0)
            )
            phone = Phone()
            async with client:
                tiers = await onboard(
                    client,
                    KTP_NIK,
                    phone.key.device_id,
                    phone.key.public_key_pem(),
                    lambda kind, challenge: phone.answer(challenge),
                )
            assert [t.value for t in tiers] == [
                "KYC_TIER_BASIC",
                "KYC_TIER_STANDARD",
                "KYC_TIER_PREMIUM",
            ]

            # TypeScript, with node.
            _, _, secret = await asyncio.to_thread(
                create_org_and_key, e2e.database_url, "Generated TypeScript", ("public",)
            )
            outcome = await _run_typescript(generated / "ts", listening.address, secret)
        finally:
            await listening.stop()
        assert outcome["tiers"] == ["KYC_TIER_BASIC", "KYC_TIER_STANDARD", "KYC_TIER_PREMIUM"]
        assert outcome["reason"] == "CUSTOMER_NOT_FOUND"


async def _run_typescript(ts: Path, address: str, secret: str) -> dict[str, Any]:
    phone = Phone()
    process = await asyncio.create_subprocess_exec(
        "node", "out/flow.js", f"http://{address}", secret, KTP_NIK, phone.key.device_id,
        phone.key.public_key_pem(), cwd=ts, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin and process.stdout and process.stderr
    try:
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), 300)
            if not line:
                raise AssertionError((await process.stderr.read()).decode()[-3000:])
            message = json.loads(line)
            if "challenge" not in message:
                assert await asyncio.wait_for(process.wait(), 60) == 0
                return dict(message)
            bundle = await asyncio.to_thread(phone.answer, message["challenge"])
            process.stdin.write((json.dumps({"bundle": bundle}) + "\n").encode())
            await process.stdin.drain()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
