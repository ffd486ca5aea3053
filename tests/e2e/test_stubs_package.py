"""The stubs package (identity-platform-stubs) for internal callers.

Built from contracts/python (tools/contracts.py writes its pyproject), it
installs into a fresh virtualenv that then holds nothing but the package and
its three dependencies (from the wheels tools/envs/wheelhouse.sh downloaded at
the pinned versions: no index is asked), with its type stubs; a backend
script run by that virtualenv's Python (tests/support/stubs_caller.py)
onboards a customer to premium and runs a step-up over gRPC against the real
mesh on PostgreSQL, with an API key and mutual TLS, and decodes refusals
from their ErrorInfo. The test plays the customer's device: it signs each
capture bundle for the challenge the backend prints, with the partner
client's DeviceKey.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from identity_runtime import mesh as mesh_catalogue
from tests.e2e.test_onboarding import KTP_NIK
from tests.support.gateway import create_org_and_key
from tests.support.mesh import running_mesh
from tests.support.meshauth import _tls_dir, certificate_files
from tests.support.phone import Phone

pytestmark = [pytest.mark.e2e, pytest.mark.models, pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".build" / "wheelhouse"
STUBS = {"identity-platform-stubs", "grpcio", "protobuf", "googleapis-common-protos"}
# grpcio's own dependency.
TRANSITIVE = {"typing_extensions"}
# What `python -m venv` puts in every environment.
VENV_BASE = {"pip", "setuptools"}
ISOLATED = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PYTHONNOUSERSITE": "1"}


def run(*command: str | Path) -> str:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, env=ISOLATED, check=False
    )
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


@pytest.fixture(scope="module")
def stubs_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh virtualenv with only the stubs package installed."""
    if not (WHEELHOUSE / ".downloaded").is_file():
        pytest.fail("no wheelhouse: `tools/dev setup` runs tools/envs/wheelhouse.sh")
    tmp = tmp_path_factory.mktemp("stubs")
    dist = tmp / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--no-index", "-q", "-w", dist, ROOT / "contracts" / "python")  # fmt: skip
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--no-index", "--find-links", WHEELHOUSE,
        "--find-links", dist, "identity-platform-stubs")  # fmt: skip
    return python


def test_the_venv_holds_only_the_stubs_and_their_dependencies(stubs_python: Path) -> None:
    listed = json.loads(run(stubs_python, "-m", "pip", "list", "--format=json"))
    assert {p["name"].lower() for p in listed} - VENV_BASE - TRANSITIVE == STUBS
    probe = (
        "import importlib.util as u, pathlib, identity_platform_api as p\n"
        "from identity_platform_api.kyc_tier.v1 import step_up_pb2_grpc\n"
        "root = pathlib.Path(p.__file__).parent\n"
        "stubs = root / 'kyc_tier/v1/step_up_pb2.pyi'\n"
        "server = ('services', 'gateway', 'identity_runtime', 'identity')\n"
        "print((root / 'py.typed').is_file(), stubs.is_file(),\n"
        "      [m for m in server if u.find_spec(m)])\n"
    )
    assert run(stubs_python, "-I", "-c", probe).split() == ["True", "True", "[]"]


async def test_an_internal_caller_onboards_and_steps_up_over_grpc_within_the_rate_limit(
    stubs_python: Path, tmp_path: Path
) -> None:
    # Each downstream hop is capped at the service's default deadline even under
    # a longer caller deadline; on a shared 2-core machine OCR can outlast 10 s.
    slow_machine = {
        f"{s.env_prefix}_DEFAULT_DEADLINE_SECONDS": "60" for s in mesh_catalogue.SERVICES
    }
    async with running_mesh(tmp_path, extra_env=slow_machine) as e2e:
        _, _, api_key = await asyncio.to_thread(
            create_org_and_key, e2e.database_url, "Internal Team", ("public",)
        )
        cert, key = certificate_files("internal-caller")
        address = e2e.servers[mesh_catalogue.KYC_TIER.package].address
        process = await asyncio.create_subprocess_exec(
            str(stubs_python), "-I", str(ROOT / "tests" / "support" / "stubs_caller.py"),
            address, api_key, str(_tls_dir() / "ca.pem"), str(cert), str(key),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=ISOLATED, cwd=tmp_path,
        )  # fmt: skip
        assert process.stdin and process.stdout and process.stderr
        device = Phone()

        async def send(**fields: Any) -> None:
            assert process.stdin is not None
            process.stdin.write((json.dumps(fields) + "\n").encode())
            await process.stdin.drain()

        async def hear() -> dict[str, Any]:
            assert process.stdout is not None and process.stderr is not None
            line = await asyncio.wait_for(process.stdout.readline(), 300)
            if not line:
                raise AssertionError((await process.stderr.read()).decode()[-3000:])
            return dict(json.loads(line))

        try:
            await send(
                external_id="internal-1",
                nik=KTP_NIK,
                device_id=device.key.device_id,
                public_key_pem=device.key.public_key_pem(),
            )
            assert (await hear())["tier"] == "KYC_TIER_BASIC"
            challenge = (await hear())["challenge"]
            await send(bundle=device.ktp(challenge))
            await send(
                ocr_fields={
                    "nik": KTP_NIK,
                    "full_name": "SITI RAHAYU",
                    "birth_date": "1995-07-01",
                    "gender": "female",
                }
            )
            assert (await hear())["tier"] == "KYC_TIER_STANDARD"
            challenge = (await hear())["challenge"]
            await send(bundle=device.selfie(challenge, "img2.jpg"))
            assert (await hear())["tier"] == "KYC_TIER_PREMIUM"
            challenge = (await hear())["challenge"]
            await send(bundle=device.selfie(challenge, "img4.jpg"))
            decided = await hear()
            assert decided["allow"] is True and decided["verification_id"]
            refusals = (await hear())["refusals"]
            assert refusals["missing"][:2] == ["NOT_FOUND", "CUSTOMER_NOT_FOUND"]
            # The contract's required fields hold over gRPC too, naming the field.
            assert refusals["empty"][:2] == ["INVALID_ARGUMENT", "INVALID_FIELD"]
            assert refusals["empty"][2].startswith("customer_id: is required")
            # Held to the contract's rate limit like a partner behind the gateway.
            limited = await hear()
            assert limited["issued"] == 10
            assert limited["refused"] == ["RESOURCE_EXHAUSTED", "RATE_LIMITED"]
            assert await asyncio.wait_for(process.wait(), 60) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
