"""One timer per connection, armed lazily: the timeouts of the server and of the upstream pool.

A connection asks for "fire by this deadline" many times (each request, each read); most of those
deadlines are later than the one already armed and cost nothing. The timer fires at the earliest
deadline asked of it; its callback then looks at the connection's state and arms it again for
the deadline that holds now. So a request costs no timer of its own, and a stream none per read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["LazyTimer"]

_INF = float("inf")


class LazyTimer:
    __slots__ = ("_callback", "_handle", "_loop", "at")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self.at = _INF  # when it fires (inf: not armed)

    def arm(self, deadline: float) -> None:
        """Make sure the callback runs by ``deadline``."""
        handle = self._handle
        if handle is not None:
            if self.at <= deadline:
                return
            handle.cancel()
        self.at = deadline
        self._handle = self._loop.call_at(deadline, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self.at = _INF

    def _fire(self) -> None:
        self._handle = None
        self.at = _INF
        self._callback()
