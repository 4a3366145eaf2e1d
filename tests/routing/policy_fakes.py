"""Fakes for the policy tests: scripted upstreams and streams on a FakeClock (no sleeping)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.core import Answer, Call, EventStream, StreamEvent, Target
from sidecar.core.clock import FakeClock
from sidecar.errors import SidecarError, error_type_for_status


def ev(name: str, **data: Any) -> StreamEvent:
    return StreamEvent(name, {"type": name, **data})


def message_start() -> StreamEvent:
    return ev("message_start", message={"id": "msg_1", "type": "message", "role": "assistant", "content": []})


def block_start(index: int = 0) -> StreamEvent:
    return ev("content_block_start", index=index, content_block={"type": "text", "text": ""})


def delta(text: str, index: int = 0) -> StreamEvent:
    return ev("content_block_delta", index=index, delta={"type": "text_delta", "text": text})


def ping() -> StreamEvent:
    return ev("ping")


def error_event(error_type: str = "overloaded_error", message: str = "Overloaded") -> StreamEvent:
    return ev("error", error={"type": error_type, "message": message})


def tail(index: int = 0) -> list[StreamEvent]:
    return [
        ev("content_block_stop", index=index),
        ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 3}),
        ev("message_stop"),
    ]


def full_stream(*words: str) -> list[list[StreamEvent]]:
    """A well-formed stream, one event per batch."""
    events = [message_start(), block_start(), *[delta(w) for w in words], *tail()]
    return [[e] for e in events]


def upstream_error(status: int, headers: list[tuple[str, str]] | None = None) -> SidecarError:
    """An error as an adapter raises it for an upstream's HTTP error answer."""
    return SidecarError(
        f"upstream answered HTTP {status}",
        status=status,
        error_type=error_type_for_status(status),
        headers=list(headers or []),
        request_id=f"req_up_{status}",
    )


# A script step: a batch of events, a float (sleep that long on the clock), an exception to raise,
# or HANG (wait forever).
HANG = object()
Step = list[StreamEvent] | float | BaseException | object


class FakeStream:
    """An EventStream from a script; records whether it was closed."""

    def __init__(self, clock: FakeClock, script: Sequence[Step]) -> None:
        self.clock = clock
        self.script = script
        self.closed = False
        self.sent: list[StreamEvent] = []
        self.stream = EventStream(self._batches(), close=self._close)

    async def _batches(self) -> AsyncIterator[list[StreamEvent]]:
        for step in self.script:
            if isinstance(step, list):
                self.sent.extend(step)
                yield step
            elif isinstance(step, float | int):
                await self.clock.sleep(float(step))
            elif isinstance(step, BaseException):
                raise step
            else:
                await asyncio.Event().wait()

    async def _close(self) -> None:
        self.closed = True


@dataclass
class Reply:
    """What a fake upstream does for one call."""

    error: SidecarError | None = None
    stream: Sequence[Step] | None = None
    message: dict[str, Any] | None = None
    delay: float = 0.0  # seconds (on the clock) before answering
    hang: bool = False  # never answer


def ok_json() -> Reply:
    return Reply(message={"type": "message", "content": [{"type": "text", "text": "hi"}]})


@dataclass
class FakeUpstreams:
    """``send_attempt`` for the executor: each upstream answers its replies in order."""

    clock: FakeClock
    replies: dict[str, list[Reply]]
    calls: list[Target] = field(default_factory=list)
    streams: list[FakeStream] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    default: Callable[[], Reply] = ok_json

    async def send(self, target: Target) -> Answer:
        self.calls.append(target)
        queue = self.replies.get(target.upstream, [])
        reply = queue.pop(0) if queue else self.default()
        try:
            if reply.hang:
                await asyncio.Event().wait()
            if reply.delay:
                await self.clock.sleep(reply.delay)
        except asyncio.CancelledError:
            self.cancelled.append(target.upstream)
            raise
        if reply.error is not None:
            raise reply.error
        if reply.stream is not None:
            fake = FakeStream(self.clock, reply.stream)
            self.streams.append(fake)
            return Answer(events=fake.stream, upstream=target.upstream)
        return Answer(message=reply.message, upstream=target.upstream)

    def order(self) -> list[str]:
        return [t.upstream for t in self.calls]


def make_call(
    *, stream: bool = True, deadline: float | None = None, model: str = "claude-sonnet-4-6"
) -> Call:
    return Call(
        endpoint="messages",
        body={"model": model, "max_tokens": 16, "messages": [], "stream": stream},
        raw=None,
        model=model,
        stream=stream,
        request_id="req_sidecar",
        door="http",
        deadline=deadline,
    )


async def drain(stream: EventStream) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    try:
        async for event in stream:
            out.append(event)
    finally:
        await stream.aclose()
    return out


def texts(events: list[StreamEvent]) -> list[str]:
    return [e.data["delta"]["text"] for e in events if e.name == "content_block_delta"]
