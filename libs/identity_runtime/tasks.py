"""Background asyncio tasks: the one way a worker stops its loop, and the
loop of a worker that runs a pass now and then or as soon as it is woken."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from structlog.typing import FilteringBoundLogger


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (None: nothing runs) and wait until it has ended, so that
    nothing it holds outlives the caller's stop; its CancelledError is the
    expected end and is not raised."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class WakeableLoop:
    """A background task that calls `run_pass` every `poll_seconds`, or at
    once after `wake()` (e.g. when a commit left new work for it).

    A failing pass is logged (on `logger`, as `failure_message`) and the
    loop goes on: the worker must outlive any single failure. Subclasses
    implement `run_pass`; `start` and `stop` may be called more than once.

    `gather_seconds`: a pass starts at most that often when woken, so that
    the work of commits close together is done in one pass (0: at once)."""

    def __init__(
        self,
        *,
        name: str,
        poll_seconds: float,
        logger: FilteringBoundLogger,
        failure_message: str,
        gather_seconds: float = 0.0,
    ) -> None:
        self.loop_name = name
        self.poll_seconds = poll_seconds
        self.gather_seconds = gather_seconds
        self._log = logger
        self._failure_message = failure_message
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def run_pass(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=self.loop_name)

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            # The flag ends the loop even if the cancellation is lost on the way.
            self._stopping = True
            self._wake.set()
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        clock = asyncio.get_running_loop().time
        while not self._stopping:
            started = clock()
            try:
                await self.run_pass()
            except Exception:  # noqa: BLE001 - the loop must outlive any single failure
                self._log.exception(self._failure_message)
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that
            # arrives as the wake-up does, and the loop outlived stop().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            # Woken soon after the last pass began: let more work gather first.
            gather = started + self.gather_seconds - clock()
            if gather > 0 and not self._stopping:
                await asyncio.sleep(gather)
            self._wake.clear()
