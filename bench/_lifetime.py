"""How long a bench server child (the fake upstream, the stand-in proxy) runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


async def until_stopped(max_seconds: float) -> None:
    """Return on SIGTERM or SIGINT, when the parent process dies, or after ``max_seconds``: a
    child the bench lost track of never outlives it for long."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    deadline = loop.time() + max_seconds
    while not stop.is_set() and loop.time() < deadline and os.getppid() == parent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
