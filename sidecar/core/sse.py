"""Incremental SSE framing: split a byte stream into events without altering a byte.

Each event keeps its exact bytes (``raw``), terminator included, so concatenating the events
gives back the input. The name comes from the ``event:`` line; the data lines are found and
decoded only when someone asks (``StreamEvent.data``): a relayed content delta costs one
``find`` for its end, one for its name line and the event object.
"""

from __future__ import annotations

import re

from .answer import FROM_RAW, StreamEvent, data_lines

__all__ = ["EVENT_NAMES", "SSESplitter", "parse_event"]

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE = re.compile(rb"\r\n|\n|\r")
#: The event names the Messages API streams (spec section 4).
EVENT_NAMES = (
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
)
# The same as interned strings, by their bytes (no decode per event).
_NAMES = {name.encode(): name for name in EVENT_NAMES}


def parse_event(raw: bytes) -> StreamEvent:
    """One SSE event's name (its data lines found lazily), keeping ``raw`` as it is."""
    if b"\r" in raw:
        return _parse_lines(raw)
    return _parse_lf(raw)


def _parse_lf(raw: bytes) -> StreamEvent:
    """``parse_event`` of an event known to hold no CR (``SSESplitter`` checks its buffer)."""
    if raw.startswith(b"event: "):
        # The common shape: `event: NAME\n` first.
        token = raw[7 : raw.find(b"\n")]
        name = _NAMES.get(token)
        if name is None:
            name = token.decode("utf-8", "replace")
        return StreamEvent(name, raw=raw, data_bytes=FROM_RAW)
    return _parse_lines(raw)


def _parse_lines(raw: bytes) -> StreamEvent:
    name = ""
    for line in _LINE.split(raw):
        if line.startswith(b"event:"):
            value = line[6:]
            name = (value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace")
    return StreamEvent(name, raw=raw, data_bytes=data_lines(raw))


class SSESplitter:
    """Feed chunks; get whole events back as they complete."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            return self._feed_cr(buf)
        # Split in C: every part but the last is a whole event (its terminator to put back),
        # the last is what is still to come.
        parts = buf.split(b"\n\n")
        self._buf = parts.pop()
        return [_parse_lf(part + b"\n\n") for part in parts]

    def feed_until(self, chunk: bytes, name: str) -> list[StreamEvent]:
        """As ``feed``, but stops after the first whole event named ``name``: the events after it
        stay buffered (``feed(b"")`` returns them). A stream's first read often holds the whole
        answer; splitting its head off lets the first token go out before the rest is parsed."""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            return self._feed_cr(buf)
        events: list[StreamEvent] = []
        start = 0
        while (end := buf.find(b"\n\n", start)) >= 0:
            event = _parse_lf(buf[start : end + 2])
            events.append(event)
            start = end + 2
            if event.name == name:
                break
        self._buf = buf[start:]
        return events

    def _feed_cr(self, buf: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        start = 0
        for m in _BOUNDARY.finditer(buf):
            events.append(parse_event(buf[start : m.end()]))
            start = m.end()
        self._buf = buf[start:]
        return events

    def flush(self) -> StreamEvent | None:
        """The unterminated tail when the stream ends, if it is a whole event.

        A tail whose data is a complete JSON object is returned with its terminator added (the
        TS SDK drops an unterminated last event); anything else (a cut-off event, a stray
        comment) is not an event and is dropped.
        """
        rest, self._buf = self._buf, b""
        if not rest.strip():
            return None
        event = parse_event(rest)
        # Per SSE, an event without data is never dispatched.
        if event.name and b"data:" in rest and "_raw" not in event.data:
            terminator = b"\r\n\r\n" if rest.endswith(b"\r\n") else b"\n\n"
            return parse_event(rest.rstrip(b"\r\n") + terminator)
        return None
