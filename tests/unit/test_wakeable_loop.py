"""WakeableLoop: a pass at start, then one per wake-up; with `gather_seconds`
the wake-ups that come soon after a pass began wait for one later pass."""

from __future__ import annotations

import asyncio

import structlog

from identity_runtime.tasks import WakeableLoop


class Counting(WakeableLoop):
    def __init__(self, gather_seconds: float) -> None:
        super().__init__(
            name="counting",
            poll_seconds=3600,
            logger=structlog.get_logger("test"),
            failure_message="failed",
            gather_seconds=gather_seconds,
        )
        self.passes = 0
        self.ran = asyncio.Event()

    async def run_pass(self) -> None:
        self.passes += 1
        self.ran.set()


async def _passes_after_three_wakes(gather_seconds: float) -> int:
    loop = Counting(gather_seconds)
    loop.start()
    await asyncio.wait_for(loop.ran.wait(), 30)
    loop.ran.clear()
    for _ in range(3):
        loop.wake()
        await asyncio.sleep(0)
    if gather_seconds == 0:
        await asyncio.wait_for(loop.ran.wait(), 30)
    else:
        # The gathered pass is an hour away: nothing more may run meanwhile.
        for _ in range(20):
            await asyncio.sleep(0)
    passes = loop.passes
    await loop.stop()
    return passes


def test_without_gathering_a_wake_up_runs_a_pass_at_once() -> None:
    assert asyncio.run(_passes_after_three_wakes(0)) >= 2


def test_wake_ups_soon_after_a_pass_wait_for_the_gathering_window() -> None:
    assert asyncio.run(_passes_after_three_wakes(3600)) == 1


def test_a_gathering_loop_stops_at_once() -> None:
    async def scenario() -> None:
        loop = Counting(3600)
        loop.start()
        await asyncio.wait_for(loop.ran.wait(), 30)
        loop.wake()
        await asyncio.sleep(0)
        await asyncio.wait_for(loop.stop(), 30)

    asyncio.run(scenario())
