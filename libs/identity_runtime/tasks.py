"""Background asyncio tasks: the one way a worker stops its loop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (None: nothing runs) and wait until it has ended, so that
    nothing it holds outlives the caller's stop; its CancelledError is the
    expected end and is not raised."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
