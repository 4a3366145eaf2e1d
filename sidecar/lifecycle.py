"""Lifecycle: in-flight tracking, graceful drain, and config snapshots that reload safely.

::

    serving ──SIGTERM──► draining ──nothing in flight──────────────► stopped
                         (readiness false, │
                          still serving)   └─drain timeout─► cut ──► stopped
                                              (remaining calls end well-formed: an SSE
                                               `error` event, a 529, or gRPC UNAVAILABLE)

Every API call enters and leaves (``enter``/``leave``), which pins the config snapshot (a
``Pipeline``) it started with. A reload swaps the current snapshot for new calls; a retired
snapshot closes its upstream pools when its last call leaves, so in-flight calls and streams
are never dropped by a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterator

from .core.aio import current_task
from .errors import Overloaded
from .pipeline import Pipeline

__all__ = ["SHUTDOWN_MESSAGE", "ConfigWatcher", "Lifecycle", "shutdown_error"]

log = logging.getLogger("pipeline.lifecycle")

SHUTDOWN_MESSAGE = "the sidecar is shutting down; retry the request"


def shutdown_error() -> Overloaded:
    """What a call still running at the drain deadline ends with (retryable by the SDKs)."""
    return Overloaded(SHUTDOWN_MESSAGE)


class Lifecycle:
    def __init__(self, pipeline: Pipeline) -> None:
        self._current = pipeline
        self._users: dict[int, int] = {id(pipeline): 0}  # snapshot -> calls using it
        self._retired: dict[int, Pipeline] = {}
        self._tasks: dict[asyncio.Task[object], Pipeline] = {}
        # Set when the last call leaves, while a drain waits for that (asyncio's Event is Python
        # code: setting and clearing one for every call cost two interpreted calls a request).
        self._idle: asyncio.Future[None] | None = None
        self.draining = False
        self.cut = False  # the drain deadline passed: remaining calls are being ended

    @property
    def current(self) -> Pipeline:
        return self._current

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def enter(self) -> Pipeline:
        """Register the running task as an API call; returns the snapshot it must use."""
        task = current_task()
        assert task is not None
        pipeline = self._current
        self._tasks[task] = pipeline
        self._users[id(pipeline)] = self._users.get(id(pipeline), 0) + 1
        return pipeline

    def snapshot(self) -> Pipeline:
        """The snapshot of the running call, or the current one outside a tracked call."""
        task = current_task()
        return self._tasks.get(task, self._current) if task is not None else self._current

    @contextlib.contextmanager
    def tracked(self) -> Iterator[Pipeline]:
        pipeline = self.enter()
        try:
            yield pipeline
        finally:
            self.leave()

    def leave(self) -> None:
        task = current_task()
        pipeline = self._tasks.pop(task, None) if task is not None else None
        if pipeline is not None:
            self._unuse(pipeline)
        idle = self._idle
        if idle is not None and not self._tasks and not idle.done():
            idle.set_result(None)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Pipeline]:
        """The current snapshot, kept open until the block ends, for background work that is no
        call in flight (batch entries: the drain does not wait for them, their runner stops
        them and they resume after a restart)."""
        pipeline = self._current
        self._users[id(pipeline)] = self._users.get(id(pipeline), 0) + 1
        try:
            yield pipeline
        finally:
            self._unuse(pipeline)

    def _unuse(self, pipeline: Pipeline) -> None:
        key = id(pipeline)
        self._users[key] -= 1
        if self._users[key] == 0 and key in self._retired:
            del self._users[key]
            retired = self._retired.pop(key)
            asyncio.get_running_loop().create_task(retired.aclose())

    def swap(self, pipeline: Pipeline) -> None:
        """New calls use ``pipeline``; the old snapshot closes once its calls are done."""
        old = self._current
        self._current = pipeline
        self._users.setdefault(id(pipeline), 0)
        if self._users.get(id(old), 0) == 0:
            self._users.pop(id(old), None)
            asyncio.get_running_loop().create_task(old.aclose())
        else:
            self._retired[id(old)] = old

    async def drain(self, timeout: float) -> bool:
        """Wait until nothing is in flight, at most ``timeout`` s; then cut what remains.

        Returns True when everything finished by itself.
        """
        self.draining = True
        try:
            await asyncio.wait_for(self._until_idle(), timeout)
            return True
        except TimeoutError:
            pass
        self.cut = True
        log.warning(
            "drain timeout (%g s) passed with %d calls in flight: ending them", timeout, self.in_flight
        )
        for task in list(self._tasks):
            task.cancel()
        try:
            await asyncio.wait_for(self._until_idle(), 5.0)
        except TimeoutError:
            log.error("%d calls did not end after being cancelled", self.in_flight)
        return False

    async def _until_idle(self) -> None:
        if not self._tasks:
            return
        if self._idle is None or self._idle.done():
            self._idle = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._idle)

    async def close(self) -> None:
        """Close every snapshot still open (at exit)."""
        await self._current.aclose()
        for pipeline in list(self._retired.values()):
            await pipeline.aclose()
        self._retired.clear()


class ConfigWatcher:
    """Polls a config file and calls ``reload`` when it changes (ConfigMap updates swap a
    symlink, so the stat of the path, followed, is compared: inode, size and mtime)."""

    def __init__(self, path: str, reload: Callable[[], Awaitable[object]], interval: float) -> None:
        self.path = path
        self._reload = reload
        self.interval = interval
        self._last = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            current = self._stat()
            if current is not None and current != self._last:
                self._last = current
                await self._reload()
