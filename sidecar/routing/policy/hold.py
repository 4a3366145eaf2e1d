"""StreamHold: keep a stream's first events back so a failure before any content can be retried.

::

    HOLDING ── content_block_delta ────────────────────────▶ COMMITTED (held events, then the rest)
       │    ── hold limit passed ──────────────────────────▶ COMMITTED (held events, then the rest)
       │    ── ended after message_stop (no content) ──────▶ COMMITTED
       │    ── in-band `error`, SidecarError, idle/deadline
       │       timeout, ended without message_stop ────────▶ FAILED (held events dropped, stream closed)

    COMMITTED ── source ends with message_stop or `error` ──▶ done
              ── SidecarError, idle/deadline timeout,
                 ended without message_stop ───────────────▶ one terminal `error` event, done

Nothing held has reached the client, so FAILED is invisible: the caller may retry (or send the
error with its real HTTP status). Once committed, the client has (or is about to have) content,
so a later failure is never retried: it becomes the spec's terminal ``error`` event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ...core import EventStream, StreamEvent, error_from_event
from ...core.clock import Clock, wait_within
from ...errors import SidecarError, Timeout, UpstreamError

__all__ = ["HoldResult", "hold"]

_CONTENT = "content_block_delta"
_TERMINAL = frozenset({"message_stop", "error"})

# Called once when a committed stream ends: None when it ended well, else the failure.
OnEnd = Callable[[SidecarError | None], None]


@dataclass(frozen=True, slots=True)
class HoldResult:
    """Either ``stream`` (committed: replays the held events, then continues) or ``error``."""

    stream: EventStream | None = None
    error: SidecarError | None = None
    held: int = 0  # events held back before the outcome (dropped when failed)
    reason: str = ""  # "content" | "limit" | "complete" | "error" (why it ended holding)

    @property
    def committed(self) -> bool:
        return self.stream is not None


class _Puller:
    """The source's batches with at most one read in flight, so a read can outlive a timeout
    (the hold limit passing mid-read must not cancel it: that would break the source)."""

    def __init__(self, events: EventStream) -> None:
        self.events = events
        self._it = events.batches().__aiter__()
        self._task: asyncio.Future[list[StreamEvent]] | None = None

    async def next(self, clock: Clock, timeout: float | None) -> list[StreamEvent] | None:
        """The next batch; None on timeout (the read stays in flight). Raises StopAsyncIteration
        at the end and whatever the source raises."""
        if self._task is None:
            if timeout is None:
                return await self._it.__anext__()  # nothing to race: no task on the hot path
            self._task = asyncio.ensure_future(self._it.__anext__())
        if not await wait_within(clock, self._task, timeout):
            return None
        task, self._task = self._task, None
        return task.result()

    async def close(self) -> None:
        """Cancel a read in flight, then close the source (idempotent)."""
        task, self._task = self._task, None
        try:
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            elif task is not None and not task.cancelled():
                task.exception()  # consumed, so asyncio does not log it
        finally:
            await self.events.aclose()


def _remaining(clock: Clock, *limits: float | None) -> float | None:
    now = clock.monotonic()
    left = [limit - now for limit in limits if limit is not None]
    return min(left) if left else None


async def hold(
    events: EventStream,
    limit: float,
    clock: Clock,
    *,
    idle: float | None = None,
    deadline: float | None = None,
    request_id: str = "",
    upstream: str = "",
    on_end: OnEnd | None = None,
) -> HoldResult:
    """Hold ``events`` until the first content delta or ``limit`` seconds, whichever is first.

    ``idle`` bounds the gap between two batches and ``deadline`` (on ``clock.monotonic()``) the
    whole stream, before and after the commit. When the result is ``error`` the source has been
    closed. When committed, the returned stream owns the source: closing it closes the source,
    and ``on_end`` is called once when its iteration ends: with the failure that became (or
    was) its terminal ``error`` event, or None when it ended well or its consumer stopped. If the caller is cancelled while holding, the source is closed.
    """
    puller = _Puller(events)
    held: list[StreamEvent] = []
    start = clock.monotonic()
    last = start
    reason = ""
    try:
        while not reason:
            now = clock.monotonic()
            hold_left = start + limit - now
            if hold_left <= 0:
                reason = "limit"
                break
            wait = _remaining(clock, last + idle if idle is not None else None, deadline)
            try:
                batch = await puller.next(clock, hold_left if wait is None else min(hold_left, wait))
            except StopAsyncIteration:
                if any(e.name == "message_stop" for e in held):
                    reason = "complete"
                    break
                error: SidecarError = UpstreamError(f"{_who(upstream)} ended the stream before any content")
                await puller.close()
                return HoldResult(error=error, held=len(held), reason="error")
            except SidecarError as exc:
                await puller.close()
                return HoldResult(error=exc, held=len(held), reason="error")
            if batch is None:
                if clock.monotonic() >= start + limit:
                    reason = "limit"
                    break
                await puller.close()
                return HoldResult(
                    error=_timeout(idle, deadline, clock, upstream), held=len(held), reason="error"
                )
            last = clock.monotonic()
            for i, event in enumerate(batch):
                if event.name == _CONTENT:
                    held.extend(batch)
                    reason = "content"
                    break
                if event.name == "error":
                    await puller.close()
                    return HoldResult(
                        error=error_from_event(event, request_id or None), held=len(held) + i, reason="error"
                    )
            else:
                held.extend(batch)
    except BaseException:
        await puller.close()
        raise
    stream = EventStream(
        _committed(
            puller,
            held,
            clock,
            idle=idle,
            deadline=deadline,
            last=last,
            request_id=request_id,
            upstream=upstream,
            on_end=on_end,
        ),
        close=puller.close,
    )
    return HoldResult(stream=stream, held=len(held), reason=reason)


def _who(upstream: str) -> str:
    return f"upstream {upstream!r}" if upstream else "the upstream"


def _timeout(idle: float | None, deadline: float | None, clock: Clock, upstream: str) -> Timeout:
    who = _who(upstream)
    # Without an idle timeout only the deadline can have passed (a timer may fire a little
    # before the clock reaches it).
    if idle is None or (deadline is not None and clock.monotonic() >= deadline):
        return Timeout(f"{who} did not finish the stream before the deadline")
    return Timeout(f"{who} sent nothing for {idle:g} s (idle timeout)")


async def _committed(
    puller: _Puller,
    held: list[StreamEvent],
    clock: Clock,
    *,
    idle: float | None,
    deadline: float | None,
    last: float,
    request_id: str,
    upstream: str,
    on_end: OnEnd | None,
) -> AsyncIterator[list[StreamEvent]]:
    failure: SidecarError | None = None
    ended = False
    for i, event in enumerate(held):
        if event.name in _TERMINAL:
            ended = True
            if event.name == "error":
                failure = error_from_event(event, request_id or None)
            del held[i + 1 :]  # nothing may follow a terminal event
            break
    try:
        if held:
            yield held  # one write for everything held
        while not ended:
            wait = _remaining(clock, last + idle if idle is not None else None, deadline)
            try:
                batch = await puller.next(clock, wait)
            except StopAsyncIteration:
                failure = UpstreamError(f"{_who(upstream)} ended the stream without message_stop")
                break
            except SidecarError as exc:
                failure = exc
                break
            if batch is None:
                failure = _timeout(idle, deadline, clock, upstream)
                break
            last = clock.monotonic()
            for i, event in enumerate(batch):
                if event.name in _TERMINAL:
                    ended = True
                    if event.name == "error":
                        failure = error_from_event(event, request_id or None)
                    batch = batch[: i + 1]  # nothing may follow a terminal event
                    break
            yield batch
        if failure is not None and not ended:
            yield [StreamEvent("error", _error_data(failure, request_id))]
    finally:
        if on_end is not None:
            on_end(failure)
        await puller.close()


def _error_data(exc: SidecarError, request_id: str) -> dict[str, Any]:
    return exc.body(exc.request_id or request_id)
