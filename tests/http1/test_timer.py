"""The connections' lazily armed timer (``sidecar.http1.timer``)."""

from __future__ import annotations

import asyncio

from sidecar.http1.timer import LazyTimer


async def test_it_fires_once_by_the_earliest_deadline_asked() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    timer = LazyTimer(loop, lambda: fired.append(loop.time()))
    now = loop.time()
    timer.arm(now + 0.2)
    timer.arm(now + 5.0)  # later than the one armed: nothing changes
    assert timer.at == now + 0.2
    timer.arm(now + 0.05)  # earlier: armed for it instead
    assert timer.at == now + 0.05
    await asyncio.sleep(0.3)
    assert len(fired) == 1
    assert timer.at == float("inf")  # fired: not armed any more


async def test_a_cancelled_timer_does_not_fire_and_can_be_armed_again() -> None:
    loop = asyncio.get_running_loop()
    fired: list[int] = []
    timer = LazyTimer(loop, lambda: fired.append(1))
    timer.arm(loop.time() + 0.05)
    timer.cancel()
    await asyncio.sleep(0.1)
    assert fired == [] and timer.at == float("inf")
    timer.arm(loop.time() + 0.05)
    await asyncio.sleep(0.1)
    assert fired == [1]
