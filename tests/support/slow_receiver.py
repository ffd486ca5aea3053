"""A receiver that trickles its answer, for the outbound deadline's tests
(webhooks, Face Match callbacks).

It reads a POST, then sends `HTTP/1.1 200 OK\\r\\nX-Slow: ` and one more
header byte every `interval` seconds, never ending the headers: each
read returns within httpcore's per-read timeout, so only an overall deadline
ends the attempt. Once `release` is set it ends the headers and answers 200
(a receiver set `released` answers at once). It gives up after `limit`
seconds (closing the connection), so that the code before the deadline fails
a test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib


class TricklingReceiver:
    def __init__(self, interval: float = 0.05, limit: float = 15.0, released: bool = False):
        self.interval = interval
        self.limit = limit
        # Set: the answer is completed (200).
        self.release = asyncio.Event()
        if released:
            self.release.set()
        # Set when a request's body has arrived.
        self.arrived = asyncio.Event()
        # Requests received, and connections still being answered.
        self.requests = 0
        self.serving = 0
        # Set when an answer ended because the client went away.
        self.abandoned = asyncio.Event()
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self, path: str = "/hook") -> TricklingReceiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}{path}"
        return self

    async def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.serving += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            self.requests += 1
            self.arrived.set()
            writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            await self._trickle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.abandoned.set()
        finally:
            self.serving -= 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _trickle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.limit
        while not self.release.is_set():
            if loop.time() >= give_up:
                return
            writer.write(b"x")
            await writer.drain()
            # The client closing its side shows as end of stream.
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), self.interval) == b"":
                    raise ConnectionResetError
        writer.write(b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
