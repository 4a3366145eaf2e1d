"""A validator for the Anthropic stream grammar (spec section 4).

::

    stream  := (ping | unknown)* message_start body
    body    := (block | ping | unknown)* message_delta+ message_stop      (pings, unknowns anywhere)
    block   := content_block_start content_block_delta* content_block_stop
    any point: error (terminal)

Rules checked, each reported as one human-readable violation string:

- framing (bytes mode): every event has an ``event:`` line, one JSON object as data, and the
  JSON ``type`` equals the event name; SSE comments (no ``event:``, no ``data:``) are fine;
- exactly one ``message_start``, first of the known events; its ``message`` is a Message shell
  (``content: []``, ``stop_reason: null``, usage with integer ``input_tokens`` and ``output_tokens``);
- block indexes dense and ordered (0, 1, 2 ...), blocks sequential (one open at a time), every
  delta and stop inside the open block, deltas of the block's kind (``text_delta`` and
  ``citations_delta`` in text, ``input_json_delta`` in ``*tool_use`` blocks, ``thinking_delta`` and
  ``signature_delta`` in thinking, ``compaction_delta`` in compaction; unknown delta kinds pass);
- a thinking block gets exactly one ``signature_delta``, after its last ``thinking_delta`` and
  before its ``content_block_stop``;
- ``message_delta`` only after every block closed, with ``delta.stop_reason`` set and
  ``usage.output_tokens`` an integer (other usage fields integers or null); no block after it;
- ``message_stop`` only after a ``message_delta``; nothing after ``message_stop`` or ``error``;
- termination: the stream ends with ``message_stop`` or ``error`` (``close()``);
- unknown event types are legal anywhere before the end.

Use it incrementally (``feed_event`` / ``feed_bytes`` then ``close``) or on a whole body
(``check_sse``). A ``StreamCheck`` wraps a door's send so every stream a sidecar emits is checked
when ``SIDECAR_CHECK_STREAMS`` names a log file (the test suite sets it for every sidecar).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from .answer import StreamEvent
from .jsonbytes import BAD_JSON
from .sse import EVENT_NAMES, SSESplitter

__all__ = ["CHECK_LOG", "GrammarChecker", "StreamCheck", "check_events", "check_sse", "stream_check"]

#: Where stream-grammar violations are appended when checking is on (None: off).
CHECK_LOG: str | None = os.environ.get("SIDECAR_CHECK_STREAMS") or None

_KNOWN = frozenset(EVENT_NAMES)
# Delta type -> the block kinds it may appear in ("*tool_use" means any type ending so).
_DELTA_KINDS: dict[str, tuple[str, ...]] = {
    "text_delta": ("text",),
    "citations_delta": ("text",),
    "input_json_delta": ("*tool_use",),
    "thinking_delta": ("thinking",),
    "signature_delta": ("thinking",),
    "compaction_delta": ("compaction",),
}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class GrammarChecker:
    """Feed events in order; ``violations`` collects what broke the grammar.

    ``feed_event`` and ``feed_bytes`` return the violations that event (or those bytes) added;
    ``close`` adds the termination check and returns every violation seen.
    """

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.events = 0
        self._started = False
        self._ended = False  # message_stop or error seen
        self._next_index = 0
        self._open: int | None = None  # index of the open block
        self._open_type = ""
        self._signed = False  # the open thinking block got its signature_delta
        self._deltas_done = False  # message_delta seen (no more blocks)
        self._splitter = SSESplitter()

    # --- events ------------------------------------------------------------------------

    def _bad(self, out: list[str], message: str) -> None:
        text = f"event {self.events}: {message}"
        out.append(text)
        self.violations.append(text)

    def feed_event(self, name: str, data: object) -> list[str]:
        """Check one event (its SSE name and its decoded data)."""
        out: list[str] = []
        self.events += 1
        if not isinstance(data, dict):
            self._bad(out, f"{name or '<no name>'}: data is not a JSON object")
            return out
        if data.get("type") != name:
            self._bad(out, f"event name {name!r} differs from data type {data.get('type')!r}")
        if self._ended:
            self._bad(out, f"{name} after the stream ended")
            return out
        if name not in _KNOWN or name == "ping":
            return out
        if name == "error":
            err = data.get("error")
            if not (isinstance(err, dict) and isinstance(err.get("type"), str)):
                self._bad(out, "error without error.type")
            self._ended = True
            return out
        if name == "message_start":
            self._message_start(data, out)
            return out
        if not self._started:
            self._bad(out, f"{name} before message_start")
            return out
        if name == "content_block_start":
            self._block_start(data, out)
        elif name == "content_block_delta":
            self._block_delta(data, out)
        elif name == "content_block_stop":
            self._block_stop(data, out)
        elif name == "message_delta":
            self._message_delta(data, out)
        else:  # message_stop
            if self._open is not None:
                self._bad(out, f"message_stop while block {self._open} is open")
            if not self._deltas_done:
                self._bad(out, "message_stop without a message_delta")
            self._ended = True
        return out

    def _message_start(self, data: dict[str, Any], out: list[str]) -> None:
        if self._started:
            self._bad(out, "a second message_start")
            return
        self._started = True
        message = data.get("message")
        if not isinstance(message, dict):
            self._bad(out, "message_start without a message object")
            return
        if message.get("content") != []:
            self._bad(out, "message_start.message.content is not []")
        if message.get("stop_reason") is not None:
            self._bad(out, "message_start.message.stop_reason is not null")
        usage = message.get("usage")
        if not isinstance(usage, dict):
            self._bad(out, "message_start.message.usage missing")
            return
        for key in ("input_tokens", "output_tokens"):
            if not _is_int(usage.get(key)):
                self._bad(out, f"message_start.message.usage.{key} is not an integer")
        self._check_usage_fields(usage, "message_start.message.usage", out)

    def _check_usage_fields(self, usage: dict[str, Any], where: str, out: list[str]) -> None:
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
            value = usage.get(key)
            if value is not None and not (_is_int(value) and value >= 0):
                self._bad(out, f"{where}.{key} is not a non-negative integer or null")

    def _block_start(self, data: dict[str, Any], out: list[str]) -> None:
        index = data.get("index")
        block = data.get("content_block")
        if self._deltas_done:
            self._bad(out, "content_block_start after message_delta")
        if self._open is not None:
            self._bad(out, f"content_block_start while block {self._open} is open")
        if index != self._next_index:
            self._bad(out, f"content_block_start index {index!r}, expected {self._next_index}")
        btype = block.get("type") if isinstance(block, dict) else None
        if not isinstance(btype, str):
            self._bad(out, "content_block_start without content_block.type")
            btype = ""
        position = index if isinstance(index, int) and not isinstance(index, bool) else self._next_index
        self._next_index = position + 1
        self._open = position
        self._open_type = btype
        self._signed = False

    def _block_delta(self, data: dict[str, Any], out: list[str]) -> None:
        index = data.get("index")
        if self._open is None or index != self._open:
            self._bad(out, f"content_block_delta for index {index!r}, open block is {self._open!r}")
            return
        delta = data.get("delta")
        dtype = delta.get("type") if isinstance(delta, dict) else None
        if not isinstance(dtype, str):
            self._bad(out, "content_block_delta without delta.type")
            return
        kinds = _DELTA_KINDS.get(dtype)
        if kinds is None:
            return  # a newer delta kind
        btype = self._open_type
        if not any(btype == k or (k.startswith("*") and btype.endswith(k[1:])) for k in kinds):
            self._bad(out, f"{dtype} in a {btype or 'untyped'} block (index {index})")
            return
        if btype == "thinking":
            if self._signed:
                self._bad(out, f"{dtype} after the signature_delta of block {index}")
            if dtype == "signature_delta":
                self._signed = True

    def _block_stop(self, data: dict[str, Any], out: list[str]) -> None:
        index = data.get("index")
        if self._open is None or index != self._open:
            self._bad(out, f"content_block_stop for index {index!r}, open block is {self._open!r}")
            return
        if self._open_type == "thinking" and not self._signed:
            self._bad(out, f"thinking block {index} stopped without a signature_delta")
        self._open = None

    def _message_delta(self, data: dict[str, Any], out: list[str]) -> None:
        if self._open is not None:
            self._bad(out, f"message_delta while block {self._open} is open")
        delta = data.get("delta")
        if not isinstance(delta, dict) or not isinstance(delta.get("stop_reason"), str):
            self._bad(out, "message_delta without delta.stop_reason")
        usage = data.get("usage")
        if not isinstance(usage, dict) or not _is_int(usage.get("output_tokens")):
            self._bad(out, "message_delta without an integer usage.output_tokens")
        elif isinstance(usage, dict):
            self._check_usage_fields(usage, "message_delta.usage", out)
        self._deltas_done = True

    # --- bytes -------------------------------------------------------------------------

    def feed_bytes(self, chunk: bytes) -> list[str]:
        """Check SSE bytes as they are written (events may span chunks)."""
        out: list[str] = []
        for event in self._splitter.feed(chunk):
            out.extend(self._feed_raw(event.raw or b""))
        return out

    def _feed_raw(self, raw: bytes) -> list[str]:
        name: str | None = None
        data: list[bytes] = []
        for line in raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
        if name is None and not data:
            return []  # an SSE comment
        if name is None:
            out: list[str] = []
            self.events += 1
            self._bad(out, "data without an event: line (the SDKs drop it)")
            return out
        try:
            decoded = msgspec.json.decode(b"\n".join(data)) if data else None
        except BAD_JSON:
            decoded = None
        return self.feed_event(name, decoded)

    def close(self) -> list[str]:
        """The termination check; returns every violation of the stream."""
        # The splitter's unconsumed tail (same package): bytes after the last blank line.
        if self._splitter._buf.strip():
            self.violations.append("the stream ends with an unterminated event")
            self._splitter = SSESplitter()
        if not self._ended:
            self.violations.append("the stream ended without message_stop or error")
            self._ended = True
        return self.violations


def check_sse(body: bytes) -> list[str]:
    """Every violation in a whole SSE body."""
    checker = GrammarChecker()
    checker.feed_bytes(body)
    return checker.close()


def check_events(events: list[dict[str, Any]]) -> list[str]:
    """Every violation in a whole list of event dicts (names taken from ``type``)."""
    checker = GrammarChecker()
    for event in events:
        checker.feed_event(str(event.get("type", "")), event)
    return checker.close()


# --- check mode for the doors --------------------------------------------------------------

_log_lock = threading.Lock()


def _log(path: str, label: str, violations: list[str]) -> None:
    if not violations:
        return
    with _log_lock, open(path, "a", encoding="utf-8") as f:
        f.write("".join(f"{label}: {v}\n" for v in violations))


Send = Callable[[dict[str, Any]], Awaitable[None]]


class StreamCheck:
    """Checks one emitted stream and appends its violations to ``path`` as they happen.

    HTTP: ``wrap(send)`` checks the body bytes of every ASGI message and the termination at the
    last one. gRPC: ``watch(events)`` (or ``event(data)``) per event, then ``done(cut=False)``.
    A stream the client abandoned (``cut``) is not held to the termination rule.
    """

    def __init__(self, path: str, label: str) -> None:
        self.path = path
        self.label = label
        self.checker = GrammarChecker()
        self._done = False

    def wrap(self, send: Send) -> Send:
        async def checked(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.body":
                body = message.get("body", b"")
                if body:
                    _log(self.path, self.label, self.checker.feed_bytes(body))
                if not message.get("more_body", False):
                    self.done(cut=False)
            await send(message)

        return checked

    def event(self, data: dict[str, Any]) -> None:
        _log(self.path, self.label, self.checker.feed_event(str(data.get("type", "")), data))

    async def watch(self, events: AsyncIterable[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """``events`` as they are, each checked on its way (gRPC: the door sends their data)."""
        async for event in events:
            if event.name:
                self.event(event.data)
            yield event

    def abandon(self) -> None:
        """Call from the door's ``finally``: a stream that broke off is a violation, unless it
        was cancelled (the client went away, a deadline passed) or it already ended."""
        if self._done:
            return
        exc = sys.exc_info()[1]
        if exc is None or isinstance(exc, asyncio.CancelledError | GeneratorExit):
            self.done(cut=True)
            return
        _log(self.path, self.label, [f"the stream broke off without message_stop or error: {exc!r}"])
        self._done = True

    def done(self, *, cut: bool) -> None:
        if self._done:
            return
        self._done = True
        if not cut:
            before = len(self.checker.violations)
            self.checker.close()
            _log(self.path, self.label, self.checker.violations[before:])


def stream_check(label: str) -> StreamCheck | None:
    """A ``StreamCheck`` when check mode is on (``SIDECAR_CHECK_STREAMS``), else None."""
    return None if CHECK_LOG is None else StreamCheck(CHECK_LOG, label)
