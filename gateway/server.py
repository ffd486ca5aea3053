"""The gateway on a real socket, under uvicorn.

`start(settings)` binds the socket first (a taken port fails at once with a
clear OSError; port 0 picks a free one), starts uvicorn in the running event
loop and returns when it accepts connections; `RunningGateway.stop()` shuts
it down gracefully. `serve(settings)` is the process entry: it also lets
uvicorn handle SIGTERM/SIGINT. `identity up` can `start()` the gateway next to
the services in its own loop, keeping its own signal handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings


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
        raise OSError(
            f"gateway: cannot listen on {host}:{port} ({exc.strerror or exc}; is the port taken?)"
        ) from None
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


@contextlib.contextmanager
def _no_signal_handling() -> Iterator[None]:
    yield


@dataclass
class RunningGateway:
    server: uvicorn.Server
    sock: socket.socket
    task: asyncio.Task[None]
    address: str

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    async def wait(self) -> None:
        try:
            await self.task
        finally:
            self.sock.close()

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (grace period), close."""
        self.server.should_exit = True
        await self.wait()


async def start(settings: GatewaySettings, *, handle_signals: bool = False) -> RunningGateway:
    sock = bind_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    server = build_server(settings)
    if not handle_signals:
        # uvicorn has no option for it: replace the method on this instance.
        server.capture_signals = _no_signal_handling  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    running = RunningGateway(server, sock, task, f"{host}:{port}")
    while not server.started:
        if task.done():  # start-up failed (lifespan error): surface it
            await running.wait()
            raise RuntimeError("gateway: uvicorn stopped during start-up")
        await asyncio.sleep(0.01)
    return running


async def serve(
    settings: GatewaySettings, on_listening: Callable[[str], None] | None = None
) -> None:
    """Run until SIGTERM/SIGINT (uvicorn's handlers), then shut down gracefully."""
    running = await start(settings, handle_signals=True)
    if on_listening is not None:
        on_listening(running.address)
    await running.wait()
