"""Incremental SSE framing: split a byte stream into events without altering a byte.

Each event keeps its exact bytes (``raw``), terminator included, so concatenating the events
gives back the input. The name comes from the ``event:`` line; the data lines are decoded only
when someone asks (``StreamEvent.data``).
"""

from __future__ import annotations

import re

from .answer import StreamEvent

__all__ = ["SSESplitter", "parse_event"]

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE = re.compile(rb"\r\n|\n|\r")


def parse_event(raw: bytes) -> StreamEvent:
    """One SSE event's name and data text, keeping ``raw`` as it is."""
    name = ""
    data: list[bytes] = []
    if raw.startswith(b"event: ") and b"\r" not in raw:
        # The common shape, `event: NAME\ndata: JSON\n\n`, without a general line scan.
        nl = raw.find(b"\n")
        name = raw[7:nl].decode()
        rest = raw[nl + 1 :]
        if rest.startswith(b"data: ") and rest.count(b"\n") <= 2:
            return StreamEvent(name, raw=raw, data_bytes=rest[6:].rstrip(b"\n"))
        lines = _LINE.split(rest)
    else:
        lines = _LINE.split(raw)
    for line in lines:
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            value = line[6:]
            name = (value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace")
    return StreamEvent(name, raw=raw, data_bytes=b"\n".join(data) if data else None)


class SSESplitter:
    """Feed chunks; get whole events back as they complete."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        buf = self._buf + chunk if self._buf else chunk
        events: list[StreamEvent] = []
        start = 0
        if b"\r" not in buf:
            while True:
                end = buf.find(b"\n\n", start)
                if end < 0:
                    break
                events.append(parse_event(buf[start : end + 2]))
                start = end + 2
        else:
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
