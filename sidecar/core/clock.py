"""Time for policies: a ``Clock`` (monotonic time, wall time, async sleep) and a fake for tests.

Every wait a policy makes (backoff, timeouts, the stream hold) goes through a Clock, so tests
run on ``FakeClock`` without sleeping. ``FakeClock`` jumps: when every task is waiting, its
driver moves time to the earliest pending sleep and wakes it, so a test that stalls an upstream
for an hour finishes at once, deterministically.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import TypeVar

__all__ = ["Clock", "FakeClock", "SystemClock", "wait_within"]

T = TypeVar("T")


class Clock:
    """Base class: implement ``monotonic``, ``time`` and ``sleep``."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (the timebase of ``Call.deadline``)."""
        raise NotImplementedError("Clock.monotonic")

    def time(self) -> float:
        """Wall-clock seconds since the epoch (to read ``retry-after`` HTTP dates)."""
        raise NotImplementedError("Clock.time")

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` on this clock; cancellable."""
        raise NotImplementedError("Clock.sleep")


class SystemClock(Clock):
    """The real clock: ``time.monotonic``, ``time.time`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class FakeClock(Clock):
    """A clock that only moves when told to, or (``autojump``) when every task is waiting.

    ``sleeps`` records every sleep asked for, in order. With ``autojump`` (the default) a driver
    task yields to the event loop ``settle`` times, then jumps to the earliest pending sleep;
    tests whose fakes await only this clock or ready work are deterministic.
    """

    def __init__(
        self, start: float = 1000.0, *, wall: float = 1_700_000_000.0, autojump: bool = True, settle: int = 50
    ) -> None:
        self._start = start
        self._now = start
        self._wall = wall
        self.autojump = autojump
        self.settle = settle
        self.sleeps: list[float] = []
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._wall + (self._now - self._start)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._now + seconds, next(self._seq), future))
        if self.autojump and self._driver is None:
            self._driver = asyncio.get_running_loop().create_task(self._drive())
        try:
            await future
        finally:
            if not future.done():
                future.cancel()  # the driver drops cancelled timers

    def advance(self, seconds: float) -> None:
        """Move time forward and wake the sleeps that are due."""
        self._now += seconds
        self._fire()

    def pending(self) -> int:
        """Sleeps not yet woken."""
        return sum(1 for _, _, f in self._timers if not f.done())

    def _fire(self) -> None:
        while self._timers and (self._timers[0][2].done() or self._timers[0][0] <= self._now):
            _, _, future = heapq.heappop(self._timers)
            if not future.done():
                future.set_result(None)

    async def _drive(self) -> None:
        try:
            while True:
                for _ in range(self.settle):
                    await asyncio.sleep(0)
                while self._timers and self._timers[0][2].done():
                    heapq.heappop(self._timers)
                if not self._timers:
                    return
                self._now = max(self._now, self._timers[0][0])
                self._fire()
        finally:
            self._driver = None


async def wait_within(clock: Clock, future: asyncio.Future[T], timeout: float | None) -> bool:
    """Wait until ``future`` is done or ``timeout`` seconds pass on ``clock``; True when done.

    The future is never cancelled here (the caller decides what a timeout means for it), and a
    future that finished in the same turn as the timeout counts as done.
    """
    if future.done():
        return True
    if timeout is None:
        await asyncio.wait((future,))
        return True
    if timeout <= 0:
        return False
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait((future, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not sleeper.done():
            sleeper.cancel()
            await asyncio.gather(sleeper, return_exceptions=True)
    return future.done()
