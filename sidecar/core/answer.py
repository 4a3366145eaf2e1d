"""An Answer: what an upstream adapter gives back, a whole Message or a stream of events.

Events keep the upstream's original SSE bytes when the upstream spoke Anthropic SSE and nothing
changed them, so the HTTP door can relay them byte for byte; ``data`` is decoded lazily, only
for whoever needs the dict (the gRPC door, usage accounting).
"""

from __future__ import annotations

import operator
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import TYPE_STATUS, SidecarError, UpstreamProtocolError
from .jsonbytes import BAD_JSON

__all__ = [
    "FROM_RAW",
    "Answer",
    "EventStream",
    "StreamEvent",
    "data_lines",
    "encode_sse",
    "error_from_event",
    "event_name",
    "event_usage",
]

_encode = msgspec.json.encode
_decode = msgspec.json.decode
# msgspec raises RecursionError for JSON nested past ~1,000 levels: invalid JSON all the same.


# A relayed event whose data lines have not been looked at yet (``StreamEvent.data`` finds them).
FROM_RAW = b"\0data lines not read yet"  # compared by identity
_LINE = re.compile(rb"\r\n|\n|\r")


def data_lines(raw: bytes) -> bytes | None:
    """The text of an SSE event's ``data:`` lines, joined by newlines (None: it has none)."""
    if raw.startswith(b"event: ") and b"\r" not in raw:
        # The common shape, `event: NAME\ndata: JSON\n\n`, without a general line scan.
        rest = raw[raw.find(b"\n") + 1 :]
        if rest.startswith(b"data: ") and rest.count(b"\n") <= 2:
            return rest[6:].rstrip(b"\n")
    data = [
        line[6:] if line.startswith(b"data: ") else line[5:]
        for line in _LINE.split(raw)
        if line.startswith(b"data:")
    ]
    return b"\n".join(data) if data else None


def encode_sse(name: str, data: dict[str, Any]) -> bytes:
    """One SSE event with ``event:`` and ``data:`` lines and the terminating blank line."""
    return b"event: " + name.encode() + b"\ndata: " + _encode(data) + b"\n\n"


class StreamEvent:
    """One stream event: its name, its parsed data (lazily) and, when relayed, its raw bytes."""

    __slots__ = ("_data", "_data_bytes", "name", "raw")

    def __init__(
        self,
        name: str,
        data: dict[str, Any] | None = None,
        *,
        raw: bytes | None = None,
        data_bytes: bytes | None = None,
    ) -> None:
        self.name = name
        self._data = data
        # The JSON text of the data line(s), for lazy decoding; ``FROM_RAW``: still inside ``raw``.
        self._data_bytes = data_bytes
        self.raw = raw

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            if self._data_bytes is FROM_RAW:
                self._data_bytes = data_lines(self.raw or b"")
            if self._data_bytes is None:
                self._data = {"type": self.name}
            else:
                try:
                    value = _decode(self._data_bytes)
                except BAD_JSON:
                    value = None
                # An event whose data is not a JSON object is kept as text so nothing is lost.
                self._data = (
                    value
                    if isinstance(value, dict)
                    else {"type": self.name, "_raw": self._data_bytes.decode("utf-8", "replace")}
                )
        return self._data

    def encode(self) -> bytes:
        """The SSE bytes for this event: the original ones when there are any."""
        if self.raw is not None:
            return self.raw
        return encode_sse(self.name, self.data)

    def __repr__(self) -> str:
        return f"StreamEvent({self.name!r})"


#: An event's name, read in C (``map(event_name, batch)``): no Python frame per event.
event_name = operator.attrgetter("name")


class EventStream:
    """An async iterator of StreamEvents with an ``aclose`` that releases the upstream.

    The source yields *batches*: the events that arrived together (one upstream read). The HTTP
    door writes a batch with one send; iterating the stream itself gives events one by one.
    The consumer must either exhaust it or call ``aclose`` (a ``finally`` does both): closing is
    what tells the upstream that the client went away.
    """

    def __init__(
        self,
        batches: AsyncIterator[list[StreamEvent]],
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._batches = batches
        self._close = close
        self._closed = False

    @classmethod
    def of_events(
        cls, events: AsyncIterator[StreamEvent], close: Callable[[], Awaitable[None]] | None = None
    ) -> EventStream:
        """A stream whose source yields one event at a time."""
        return cls(_Singles(events), close)

    def batches(self) -> AsyncIterator[list[StreamEvent]]:
        return self._batches

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return _Flat(self._batches)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Not `finally`: a compiled await there re-raises the caller's handled exception (setup.py).
        try:
            aclose = getattr(self._batches, "aclose", None)
            if aclose is not None:
                await aclose()
        except BaseException:
            if self._close is not None:
                await self._close()
            raise
        if self._close is not None:
            await self._close()


class _Singles:
    """``EventStream.of_events``: a source of one event at a time, as batches of one. Once it
    ends, fails or is closed, the source is closed (``aclose``, when it has one). These iterators
    are classes rather than async generators so that mypyc compiles this module (``setup.py``)."""

    __slots__ = ("_done", "_events")

    def __init__(self, events: AsyncIterator[StreamEvent]) -> None:
        self._events = events
        self._done = False

    def __aiter__(self) -> _Singles:
        return self

    async def __anext__(self) -> list[StreamEvent]:
        if self._done:
            raise StopAsyncIteration
        try:
            event = await self._events.__anext__()
        except BaseException:
            await self.aclose()
            raise
        return [event]

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()


class _Flat:
    """``EventStream.__aiter__``: the events of the stream's batches one by one."""

    __slots__ = ("_at", "_batch", "_batches", "_done")

    def __init__(self, batches: AsyncIterator[list[StreamEvent]]) -> None:
        self._batches = batches
        self._batch: list[StreamEvent] = []
        self._at = 0
        self._done = False

    def __aiter__(self) -> _Flat:
        return self

    async def __anext__(self) -> StreamEvent:
        while self._at >= len(self._batch):
            if self._done:
                raise StopAsyncIteration
            try:
                self._batch = await self._batches.__anext__()
            except BaseException:
                self._done = True
                raise
            self._at = 0
        event = self._batch[self._at]
        self._at += 1
        return event

    async def aclose(self) -> None:
        self._done = True
        self._batch = []


def event_usage(event: StreamEvent) -> dict[str, Any] | None:
    """The usage a stream event carries: a ``message_start``'s message usage or a
    ``message_delta``'s usage (the API's two places for it); None for other events or none."""
    data = event.data
    if event.name == "message_delta":
        usage = data.get("usage")
    elif event.name == "message_start":
        message = data.get("message")
        usage = message.get("usage") if isinstance(message, dict) else None
    else:
        return None
    return usage if isinstance(usage, dict) else None


def error_from_event(event: StreamEvent, request_id: str | None = None) -> SidecarError:
    """An in-band ``error`` event as a SidecarError with the status its type stands for."""
    data = event.data
    err = data.get("error")
    error_type = "api_error"
    message = "upstream sent an error event"
    if isinstance(err, dict):
        if isinstance(err.get("type"), str):
            error_type = err["type"]
        if isinstance(err.get("message"), str):
            message = err["message"]
    status = TYPE_STATUS.get(error_type, 500)
    rid = data.get("request_id")
    return SidecarError(
        message,
        status=status,
        error_type=error_type,
        request_id=rid if isinstance(rid, str) else request_id,
    )


# ``__init__`` is written out: the dataclass one (keyword-only) is generated code the compiled
# build would run interpreted, once per request.
@dataclass(slots=True, init=False)
class Answer:
    """An upstream's answer. Exactly one of ``message``/``raw`` (JSON) or ``events`` is set."""

    status: int
    # Response headers worth relaying to the client (request-id, anthropic-ratelimit-*, ...).
    headers: list[tuple[str, str]]
    message: dict[str, Any] | None
    raw: bytes | None  # the upstream's JSON bytes, relayed as they are
    events: EventStream | None
    # A relayed body of another endpoint (file content, batch results), streamed as it
    # arrives; ``close`` releases the upstream when the consumer is done or gone.
    chunks: AsyncIterator[bytes] | None
    close: Callable[[], Awaitable[None]] | None
    upstream: str  # which upstream answered (for headers and logs)

    def __init__(
        self,
        *,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        message: dict[str, Any] | None = None,
        raw: bytes | None = None,
        events: EventStream | None = None,
        chunks: AsyncIterator[bytes] | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
        upstream: str = "",
    ) -> None:
        self.status = status
        self.headers = [] if headers is None else headers
        self.message = message
        self.raw = raw
        self.events = events
        self.chunks = chunks
        self.close = close
        self.upstream = upstream

    def json(self) -> dict[str, Any]:
        """The JSON answer as a dict (decoding ``raw`` once when needed)."""
        if self.message is None:
            if self.raw is None:
                raise ValueError("this answer is a stream")
            try:
                value = _decode(self.raw)
            except BAD_JSON:
                raise UpstreamProtocolError("the upstream's answer is not valid JSON") from None
            self.message = value if isinstance(value, dict) else {"value": value}
        return self.message

    def body_bytes(self) -> bytes:
        if self.raw is None:
            self.raw = _encode(self.json())
        return self.raw
