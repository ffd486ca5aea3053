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

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.app import create_app
from gateway.settings import GatewaySettings

# What a connection gets when its request line and headers do not all arrive
# in time: no request was read, so no route, no request id, no JSON body.
_HEADER_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's line and
    headers (uvicorn has none: a client sending a head slowly, or a new
    connection sending nothing, held a connection for as long as it liked).
    The deadline runs from the connection, or from the first byte of a kept-
    alive connection's next request (uvicorn's keep-alive timeout closes one
    that stays idle), until h11 has read the whole head; then the body has
    its own (gateway.bodies). On expiry the connection is closed, after a 408
    if part of a head had come (a connection that sent nothing gets no
    answer: a browser's preconnected socket is closed quietly)."""

    header_timeout_seconds = 10.0

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        super().connection_made(transport)
        self._head_started = False
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout_seconds, self._head_timeout
        )

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()  # the head is read (or the connection is done)
        elif data:
            self._head_started = True
            if self._head_timer is None:
                timeout = self.header_timeout_seconds
                self._head_timer = self.loop.call_later(timeout, self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = None
        self._head_started = False

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._head_started:
                self.transport.write(_HEADER_TIMEOUT)
            self.transport.close()


def _protocol(settings: GatewaySettings) -> type[HeaderDeadlineProtocol]:
    return type(
        "GatewayHttpProtocol",
        (HeaderDeadlineProtocol,),
        {"header_timeout_seconds": settings.body_read_timeout_seconds},
    )


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
        http=_protocol(settings),
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
