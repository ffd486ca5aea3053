"""The gateway as a real HTTP server: uvicorn on a real socket, start-up and shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from gateway.__main__ import main
from gateway.server import bind_socket, start
from tests.support import REPO_ROOT
from tests.support.gateway import assert_error, gateway_settings
from tests.support.meshauth import service_env


async def test_real_http_chunked_oversize_body_is_413_and_the_document_is_served() -> None:
    settings = gateway_settings({}, port="0", max_body_bytes="4096")
    running = await start(settings)
    try:
        # asyncio sets TCP_NODELAY on accepted sockets only when the listener
        # says TCP; without it each response waits for a delayed ACK (~40 ms).
        assert running.sock.proto == socket.IPPROTO_TCP
        assert running.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        async with httpx.AsyncClient(base_url=f"http://{running.address}", timeout=10) as client:
            response = await client.get("/api/openapi.json")
            assert response.status_code == 200 and response.json()["openapi"] == "3.1.0"

            async def chunks():
                for _ in range(16):
                    yield b" " * 1024

            response = await client.post(
                "/api/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
            )
            assert response.request.headers.get("transfer-encoding") == "chunked"
            assert_error(response, 413, "PAYLOAD_TOO_LARGE")
            response = await client.post(
                "/api/auth/login", content=b"{", headers={"Content-Type": "application/json"}
            )
            assert_error(response, 400, "MALFORMED_REQUEST")
    finally:
        await running.stop()
    with pytest.raises(OSError, match="is the port taken"):
        # The port is free again after stop; taking it twice is refused.
        first = bind_socket("127.0.0.1", 0)
        try:
            bind_socket("127.0.0.1", first.getsockname()[1])
        finally:
            first.close()


async def _head_of(reader: asyncio.StreamReader) -> bytes:
    # A guard against a hang, not a measure of time.
    return await asyncio.wait_for(reader.read(4096), timeout=60)


async def test_a_request_head_that_does_not_all_arrive_is_408_and_closed() -> None:
    """uvicorn has no deadline on a request's line and headers: a client
    sending half a head, or a connection sending nothing, held it for as long
    as it liked (the re-probe's R4, 70 s and counting). The body-read timeout
    bounds the head too; a keep-alive connection's next head as well."""
    settings = gateway_settings({}, port="0", body_read_timeout_seconds="0.3")
    running = await start(settings)
    host, port = running.address.rsplit(":", 1)
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /api/openapi.json HTTP/1.1\r\nHost: gateway.test\r\nX-Par")
        await writer.drain()
        answer = await _head_of(reader)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert await _head_of(reader) == b""  # closed
        writer.close()

        # A connection that sends nothing is closed quietly (a browser's
        # preconnected socket must not read a 408 as the answer to a request).
        silent_reader, silent = await asyncio.open_connection(host, int(port))
        assert await _head_of(silent_reader) == b""
        silent.close()

        # A whole head in time is served; the kept-alive connection's next
        # head has the same deadline from its first byte.
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /api/healthz/live HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
        await writer.drain()
        served = await _head_of(reader)
        assert served.startswith(b"HTTP/1.1 ") and not served.startswith(b"HTTP/1.1 408 ")
        # Idle past the head deadline (below uvicorn's 5 s keep-alive): no
        # unsolicited 408 is waiting; the next whole request is served.
        await asyncio.sleep(0.6)
        writer.write(b"GET /api/healthz/live HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
        await writer.drain()
        served = await _head_of(reader)
        assert served.startswith(b"HTTP/1.1 ") and not served.startswith(b"HTTP/1.1 408 ")
        writer.write(b"GET /api/healthz/live HTTP/1.1\r\nHo")
        await writer.drain()
        assert (await _head_of(reader)).startswith(b"HTTP/1.1 408 ")
        writer.close()
    finally:
        await running.stop()


def test_settings_errors_fail_fast_with_every_problem_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(
            {
                "GATEWAY_PORT": "eighty",
                "GATEWAY_RATE_LIMIT_STORAGE": "memcached://x",
                "GATEWAY_AUDIT_ADDRESS": "nowhere",
            }
        )
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "GATEWAY_PORT='eighty'" in err
    with pytest.raises(SystemExit) as caught:
        main({"GATEWAY_RATE_LIMIT_STORAGE": "memcached://x", "GATEWAY_AUDIT_ADDRESS": "nowhere"})
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "GATEWAY_RATE_LIMIT_STORAGE" in err and "GATEWAY_AUDIT_ADDRESS" in err


def _run_gateway(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway"],
        cwd=REPO_ROOT,
        env={**os.environ, "GATEWAY_LOG_FORMAT": "console", **service_env("GATEWAY"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_taken_port_fails_at_once_with_a_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        process = _run_gateway({"GATEWAY_PORT": str(port)})
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and "port taken" in err


def test_sigterm_stops_the_gateway_cleanly() -> None:
    process = _run_gateway({"GATEWAY_PORT": "0"})
    try:
        line = process.stdout.readline()
        assert line.startswith("gateway listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        assert httpx.get(f"{url}/api/openapi.json", timeout=10).status_code == 200
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stderr.read()


async def test_an_unexpected_exception_is_a_500_without_detail(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from gateway.openapi import HEALTH_RPC
    from tests.support.gateway import gateway_client

    async with gateway_client(gateway_settings({})) as client:

        async def broken(_request):
            raise RuntimeError("secret internals at 10.0.0.7")

        client.gateway.local_handlers[HEALTH_RPC] = broken
        response = await client.get("/api/healthz", headers={"X-Request-Id": "req-boom"})
    error = assert_error(response, 500, "INTERNAL")
    assert error["status"] == "INTERNAL" and error["requestId"] == "req-boom"
    assert "secret" not in response.text and "10.0.0.7" not in response.text
    logs = capfd.readouterr()
    assert "RuntimeError" in logs.out + logs.err


async def test_a_path_with_a_newline_gets_the_gateways_json_errors() -> None:
    """Found by Schemathesis: an encoded newline in a path variable fell
    through Starlette's own routing to a text/plain 404."""
    running = await start(gateway_settings({}, port="0"))
    try:
        async with httpx.AsyncClient(base_url=f"http://{running.address}", timeout=10) as client:
            # No key: the contract route matched, so the gateway's auth answers.
            response = await client.get("/api/identity/customers/a%0Ab/attempts")
            assert response.headers["content-type"] == "application/json"
            assert_error(response, 401, "API_KEY_MISSING")
            response = await client.get("/api/nothing%0Ahere")
            assert response.headers["content-type"] == "application/json"
            assert_error(response, 404, "ROUTE_NOT_FOUND")
            response = await client.delete("/api/openapi.json")
            assert_error(response, 405, "METHOD_NOT_ALLOWED")
    finally:
        await running.stop()
