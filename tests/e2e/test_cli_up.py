"""`identity up`: the whole mesh on one machine, as the README's run command starts it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from identity_cli.up_config import pad_banner_line
from identity_runtime import mesh
from identity_runtime.settings import load_settings
from services.liveness.settings import LivenessSettings

pytestmark = [pytest.mark.slow, pytest.mark.models]

IDENTITY = str(Path(sys.executable).parent / "identity")


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def up_environment(tmp_path: Path) -> tuple[dict[str, str], dict[str, int]]:
    ports = dict(
        zip(
            [s.env_prefix for s in mesh.SERVICES] + ["GATEWAY"],
            free_ports(len(mesh.SERVICES) + 1),
            strict=True,
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KYC_TIER_", "MATCHING_", "AUDIT_", "LIVENESS_", "GATEWAY_"))
    }
    env.update({f"{prefix}_PORT": str(port) for prefix, port in ports.items()})
    env["IDENTITY_DATA_DIR"] = str(tmp_path / "data")
    return env, ports


def wait_for_line(process: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline() if process.stdout else ""
        if line:
            lines.append(line.rstrip())
            if marker in line:
                return lines
        elif process.poll() is not None:
            break
    raise AssertionError(
        f"`identity up` did not print {marker!r}: {lines}\n"
        f"{process.stderr.read() if process.stderr else ''}"
    )


def child_pid(parent: int, module: str) -> int:
    """The pid of `identity up`'s child running `python -m <module>`."""
    listing = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(parent)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pids = [int(line.split()[0]) for line in listing.splitlines() if f"-m {module}" in line]
    assert len(pids) == 1, listing
    return pids[0]


def wait_until_ok(url: str, headers: dict[str, str], timeout: float) -> httpx.Response:
    """Poll until 200 (a restarted service is ready in its own time; the
    gateway's breaker tries it again after its reset period)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, headers=headers, timeout=10)
        except httpx.HTTPError:
            response = None
        if (response is not None and response.status_code == 200) or (time.monotonic() > deadline):
            assert response is not None
            return response
        if response is not None:
            # Meanwhile only a clean "unavailable" (no 500, no address).
            assert response.status_code == 503, response.text
            assert "Retry-After" in response.headers
        time.sleep(0.5)


def test_identity_up_runs_six_services_and_the_gateway_then_stops_cleanly(tmp_path: Path) -> None:
    env, ports = up_environment(tmp_path)
    process = subprocess.Popen(
        [IDENTITY, "up"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = wait_for_line(process, "press Ctrl-C", timeout=240)
        text = "\n".join(printed)
        for service in mesh.SERVICES:
            assert f"{service.name}" in text and f"127.0.0.1:{ports[service.env_prefix]}" in text
        assert f"http://127.0.0.1:{ports['GATEWAY']}" in text
        assert "API key          idk_" in text
        # PAD runs from the packaged weights with no setting at all.
        assert "  liveness PAD     active: minifasnet-v2, minifasnet-v1se (packaged)" in printed
        assert "WARNING" not in text

        healthz = f"http://127.0.0.1:{ports['GATEWAY']}/api/healthz"
        # Anonymous: the status only; the printed (internal) key: every service.
        assert httpx.get(healthz, timeout=10).json() == {"status": "SERVING", "services": []}
        key = re.search(r"API key +(idk_\S+)", text)
        assert key, text
        headers = {"Authorization": f"Bearer {key.group(1)}"}
        health = httpx.get(healthz, headers=headers, timeout=10).json()
        assert health["status"] == "SERVING"
        assert {s["name"]: s["status"] for s in health["services"]} == {
            s.name: "SERVING" for s in mesh.SERVICES
        }

        # Every service port speaks mutual TLS with the certificates `up` issued
        # from its local CA (plaintext gets no connection).
        tls = tmp_path / "data" / "secrets" / "mesh-tls"
        credentials = grpc.ssl_channel_credentials(
            (tls / "ca.pem").read_bytes(),
            (tls / "gateway.key").read_bytes(),
            (tls / "gateway.pem").read_bytes(),
        )
        assert (tls / "ca.key").stat().st_mode & 0o077 == 0
        for service in mesh.SERVICES:
            with grpc.insecure_channel(f"127.0.0.1:{ports[service.env_prefix]}") as plaintext:
                with pytest.raises(grpc.RpcError):
                    health_pb2_grpc.HealthStub(plaintext).Check(
                        health_pb2.HealthCheckRequest(), timeout=5
                    )
            with grpc.secure_channel(
                f"127.0.0.1:{ports[service.env_prefix]}", credentials
            ) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, service.name
                stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
                )
                names = {s.name for s in next(iter(stream)).list_services_response.service}
                assert any(name.startswith(f"identity.{service.package}.v1.") for name in names), (
                    service.name,
                    names,
                )

        # The printed key works against the gateway.
        key = next(line.split()[2] for line in printed if "API key" in line)
        listed = httpx.get(
            f"http://127.0.0.1:{ports['GATEWAY']}/api/customers",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert listed.status_code == 200, listed.text

        # Supervision: kyc-tier killed with SIGKILL comes back on its own, the
        # restart is reported under the banner and in up.log, and the gateway
        # serves again; the rest of the mesh kept running.
        kyc_tier = child_pid(process.pid, "services.kyc_tier")
        os.kill(kyc_tier, signal.SIGKILL)
        printed = wait_for_line(process, "kyc-tier restarted", timeout=60)
        assert any(
            "identity up: kyc-tier exited with code -9; restarting in" in line for line in printed
        ), printed
        assert child_pid(process.pid, "services.kyc_tier") != kyc_tier
        up_log = (tmp_path / "data" / "logs" / "up.log").read_text()
        assert "kyc-tier exited with code -9" in up_log and "kyc-tier restarted" in up_log
        served_again = wait_until_ok(
            f"http://127.0.0.1:{ports['GATEWAY']}/api/customers",
            {"Authorization": f"Bearer {key}"},
            timeout=120,
        )
        assert served_again.status_code == 200, served_again.text
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
    assert code == 0
    # Every listener is gone (connections in TIME_WAIT do not hold a port
    # against SO_REUSEADDR, which every server here sets).
    for port in ports.values():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))


def test_a_taken_port_fails_fast_and_clearly(tmp_path: Path) -> None:
    env, ports = up_environment(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports["MATCHING"]))
        holder.listen()
        result = subprocess.run(
            [IDENTITY, "up"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 2
    assert f"matching port {ports['MATCHING']}" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_wrong_setting_fails_fast_naming_the_variable(tmp_path: Path) -> None:
    env, _ = up_environment(tmp_path)
    env["MATCHING_DIMENSION"] = "many"
    env["GATEWAY_MAX_BODY_BYTES"] = "-5"
    result = subprocess.run(
        [IDENTITY, "up"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.startswith("identity up: invalid configuration: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "MATCHING_DIMENSION='many'" in result.stderr
    assert "GATEWAY_MAX_BODY_BYTES" in result.stderr


def test_the_banner_warns_when_pad_is_off(tmp_path: Path) -> None:
    """The line `identity up` prints about PAD, for the settings its children get."""
    base = {"LIVENESS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}

    def line(**env: str) -> str:
        return pad_banner_line(load_settings(LivenessSettings, "LIVENESS", {**base, **env}))

    assert line() == "  liveness PAD     active: minifasnet-v2, minifasnet-v1se (packaged)"
    assert line(LIVENESS_PAD_MODEL_DIR=str(tmp_path)) == (
        f"  liveness PAD     active: minifasnet-v2, minifasnet-v1se (weights in {tmp_path})"
    )
    warning = line(LIVENESS_PAD_ENABLED="false")
    assert warning.startswith("WARNING: liveness: NO presentation-attack detection")
    assert "(challenge only)" in warning
