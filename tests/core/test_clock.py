"""The fake clock: sleeps jump its time, and wait_within times out on it."""

from __future__ import annotations

import asyncio

from sidecar.core.clock import FakeClock, wait_within


async def test_fake_clock_jumps_and_wait_within_times_out() -> None:
    clock = FakeClock(start=0.0)
    await clock.sleep(3600)
    assert clock.monotonic() == 3600.0 and clock.sleeps == [3600]
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert not await wait_within(clock, never, 5)
    assert clock.monotonic() == 3605.0 and not never.done()
    soon = asyncio.ensure_future(clock.sleep(2))
    assert await wait_within(clock, soon, 5)
    assert clock.monotonic() == 3607.0 and clock.pending() == 0
    never.cancel()
