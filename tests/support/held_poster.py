"""A poster that sends nothing, for the tests of the delivery slots
(webhooks, Face Match callbacks): each post waits until the test releases
it, then answers 200. It records what was posted, in order, and whether an
event (the `X-Identity-Event-Id` header) was ever posted while another post
of the same event was still open."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence

from identity_runtime.egress import DeliveryResult

Headers = Sequence[tuple[bytes, bytes]]


class HeldPoster:
    allow_loopback = True
    # Long: no attempt here ends by its deadline.
    timeout_seconds = 120.0

    def __init__(self) -> None:
        # (url, event id) of every post, in the order they began.
        self.posts: list[tuple[str, str]] = []
        # Posts that began while a post of the same event was open.
        self.overlapping = 0
        self._open: Counter[str] = Counter()
        self._held: list[tuple[str, asyncio.Future[None]]] = []
        self._release_all = False
        self._changed = asyncio.Condition()

    async def post(self, url: str, body: bytes, headers: Headers) -> DeliveryResult:
        event = dict(headers).get(b"X-Identity-Event-Id", b"").decode()
        held = asyncio.get_running_loop().create_future()
        async with self._changed:
            self.overlapping += self._open[event] > 0
            self._open[event] += 1
            self.posts.append((url, event))
            if self._release_all:
                held.set_result(None)
            else:
                self._held.append((url, held))
            self._changed.notify_all()
        try:
            await held
        finally:
            self._open[event] -= 1
        return DeliveryResult(True, 200, 1, "")

    def urls(self) -> list[str]:
        return [url for url, _ in self.posts]

    def events(self) -> set[str]:
        return {event for _, event in self.posts}

    def release(self, url: str | None = None) -> None:
        """The oldest post held for `url`; None: every post, now and later."""
        if url is None:
            self._release_all = True
            for _, held in self._held:
                held.set_result(None)
            self._held.clear()
            return
        for n, (held_url, held) in enumerate(self._held):
            if held_url == url:
                held.set_result(None)
                del self._held[n]
                return

    async def until(self, ready: Callable[[], bool]) -> None:
        """Until `ready()` (a test that waits longer than 30 s has failed)."""
        async with asyncio.timeout(30):
            async with self._changed:
                await self._changed.wait_for(ready)

    async def posted(self, count: int) -> None:
        """Until `count` posts have begun."""
        await self.until(lambda: len(self.posts) >= count)
