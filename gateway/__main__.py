"""Run the gateway: `identity-gateway` or `python -m gateway`.

Settings come from `GATEWAY_*` variables (see gateway/settings.py). The
socket is bound before uvicorn starts, so a taken port fails at once with
a clear message (exit 1) and port 0 works. SIGTERM/SIGINT stop accepting,
let in-flight requests finish within `GATEWAY_SHUTDOWN_GRACE_SECONDS`, then
close the channels.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Callable

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings, load
from identity_runtime import logs
from identity_runtime.settings import SettingsError


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; OSError with a clear message if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted
    # sockets whose proto says TCP; without it every response waits ~40 ms
    # for a delayed ACK (Nagle) after its headers.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OSError(f"gateway: cannot listen on {host}:{port} ({exc.strerror or exc}; is the port taken?)") from None
    sock.set_inheritable(True)
    return sock


def build_server(settings: GatewaySettings) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        lifespan="on",
        log_config=None,  # our structured logs; uvicorn's own loggers go through the root handler
        access_log=False,  # the gateway writes its own access log without paths or queries
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        proxy_headers=False,
    )
    return uvicorn.Server(config)


async def serve(settings: GatewaySettings, on_listening: Callable[[str], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT (uvicorn's handlers), then shut down gracefully."""
    sock = bind_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    address = f"{host}:{port}"
    server = build_server(settings)
    if on_listening is not None:
        on_listening(address)
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main(environ: dict[str, str] | None = None) -> None:
    try:
        settings = load(environ)
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure("gateway", settings.log_level, settings.log_format)
    # uvicorn re-raises SIGTERM once its graceful shutdown is done; end with
    # exit status 0 then, as after Ctrl-C.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        asyncio.run(serve(settings, lambda address: print(f"gateway listening on http://{address}", flush=True)))
    except OSError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
