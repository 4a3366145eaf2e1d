"""A deterministic fake Anthropic upstream that fails a share of its attempts, in every way.

Each answer depends only on the request's ``metadata.user_id`` (its key): ``expected_text`` and
``expected_events`` give the fault-free answer, so a client can compare what it got. A share of
the attempts (``fault_rate``, drawn from a seeded generator) fail in one of ``FAULTS``:

- ``429`` (``rate_limit_error``, ``retry-after: 0``), ``500`` (``api_error``), ``529``
  (``overloaded_error``): an HTTP error answer with the API's envelope;
- ``reset``: the connection is aborted after the request was read, before any answer byte;
- ``stall``: no answer at all (the sidecar's first-byte timeout must end it);
- ``inband_before``: a stream that sends ``message_start`` and then an in-band ``error``
  (a JSON request gets a 529 instead);
- ``inband_after``: a stream that sends some content deltas and then an in-band ``error``
  (a JSON request gets a 500 instead);
- ``cut``: the connection is aborted mid-answer (a stream after some deltas, JSON mid-body);
- ``trickle``: the whole, correct answer, slowly (a stream's events ``trickle_s`` apart).

A ``chooser(key, stream, attempt)`` replaces the random draw (the cancellation storm picks its
faults per request, ``HOLD`` included). A stalled, held or trickling answer stops as soon as
the peer closes the connection, and is counted in ``abandoned``.

It speaks HTTP/1.1 through h11 (an independent implementation), keeps connections alive, and
counts attempts per key, faults per kind and the requests whose answer was neither finished
nor abandoned by the client (``unfinished``: must be 0 once the campaign is over).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11

FAULTS = (
    "429",
    "500",
    "529",
    "reset",
    "stall",
    "inband_before",
    "inband_after",
    "cut",
    "trickle",
)
# Not drawn at random; a chooser asks for it: a stream held after message_start (``hold_s``)
# before its first delta, as a slow model's first token is.
HOLD = "hold"
_WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()
MODEL = "claude-reliability-1"


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def expected_deltas(key: str) -> list[str]:
    """The text deltas of the fault-free answer to request ``key`` (3 to 14 of them)."""
    rng = random.Random(_seed(key))
    return [rng.choice(_WORDS) + " " for _ in range(rng.randint(3, 14))]


def expected_text(key: str) -> str:
    return "".join(expected_deltas(key))


def expected_message(key: str, input_tokens: int) -> dict[str, Any]:
    deltas = expected_deltas(key)
    return {
        "id": "msg_" + key,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "".join(deltas)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": len(deltas)},
    }


def expected_events(key: str, input_tokens: int) -> list[dict[str, Any]]:
    """The fault-free stream's events (spec section 4), pings left out."""
    deltas = expected_deltas(key)
    start = {
        **expected_message(key, input_tokens),
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}
        for d in deltas
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": len(deltas)},
        },
        {"type": "message_stop"},
    ]
    return events


def input_tokens_of(body: dict[str, Any]) -> int:
    """What the fake reports as input tokens: the prompt's characters / 4."""
    return max(1, len(json.dumps(body.get("messages"))) // 4)


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


@dataclass
class FaultUpstream:
    """The fake. ``start()`` listens on 127.0.0.1 (a free port); ``url`` is its base URL."""

    fault_rate: float = 0.2
    seed: int = 1
    stall_s: float = 30.0
    trickle_s: float = 0.005
    attempts: Counter[str] = field(default_factory=Counter)  # per request key
    faults: Counter[str] = field(default_factory=Counter)  # per fault kind
    by_path: Counter[str] = field(default_factory=Counter)  # attempts per upstream path prefix
    chooser: Callable[[str, bool, int], str | None] | None = None
    # (first, last) attempt numbers, counted over all upstreams, during which the upstream
    # under ``outage_path`` answers every attempt with 529: an outage a breaker must notice.
    outage: tuple[int, int] | None = None
    outage_path: str = "/a"
    hold_s: float = 0.5
    unfinished: int = 0  # answers being written (or stalled) right now
    abandoned: int = 0  # answers the peer closed the connection on before they finished
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # per key, time.monotonic()
    history: dict[str, list[str]] = field(default_factory=dict)  # per key, each attempt's fault or "ok"
    # Per key, what its answers put on the wire (every attempt's): a stream's events, a JSON
    # answer's message; the storm's charge check bounds what the sidecar may charge by it.
    written: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    connections: int = 0  # open connections right now
    # Every request's headers as received (name, value), and requests h11 could not parse: for
    # the sweep, which checks that nothing a client sent turned into a header of its own.
    record_headers: bool = False
    headers_seen: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    protocol_errors: int = 0
    _rng: random.Random = field(init=False)
    _server: asyncio.Server | None = field(default=None, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def _fault(self, key: str, stream: bool) -> str | None:
        if self.chooser is not None:
            return self.chooser(key, stream, self.attempts[key])
        if self._rng.random() >= self.fault_rate:
            return None
        return self._rng.choice(FAULTS)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read_request(conn, reader)
                if request is None:
                    return
                # The peer's close, seen while an answer is stalled, held or trickling (a
                # client of HTTP/1.1 without pipelining sends nothing more before the answer).
                closed = asyncio.ensure_future(reader.read(1))
                try:
                    keep = await self._answer(conn, writer, request, body, closed)
                finally:
                    if not closed.done():
                        closed.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await closed  # before the next read of this stream
                if closed.done() and not closed.cancelled():
                    first = closed.result()
                    if not first:
                        return  # the peer closed the connection
                    conn.receive_data(first)  # the start of its next request
                if not keep or conn.our_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except h11.ProtocolError:
            self.protocol_errors += 1
            return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # close() ends every connection. Returning keeps Python 3.11's start_server callback
            # from logging the cancellation as a traceback (it calls task.exception()).
            return
        finally:
            self.connections -= 1
            self._tasks.discard(task)
            writer.transport.abort()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data and conn.their_state is h11.IDLE:
                    return None, b""
                continue
            if isinstance(event, h11.Request):
                request = event
                if self.record_headers:
                    self.headers_seen.append(list(event.headers))
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None, b""

    async def _pause(self, closed: asyncio.Future[bytes], seconds: float) -> bool:
        """Wait ``seconds``; False (and counted) when the peer closed the connection first."""
        done, _ = await asyncio.wait([closed], timeout=seconds)
        if done and not closed.result():
            self.abandoned += 1
            return False
        return True

    async def _answer(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        request: h11.Request,
        raw: bytes,
        closed: asyncio.Future[bytes],
    ) -> bool:
        target = request.target.decode()
        if not target.endswith("/v1/messages"):
            await self._send_json(conn, writer, 404, _error("not_found_error", f"no route {target}"))
            return True
        body = json.loads(raw)
        key = str((body.get("metadata") or {}).get("user_id", ""))
        stream = body.get("stream") is True
        self.attempts[key] += 1
        self.arrivals.setdefault(key, []).append(time.monotonic())
        self.by_path[target[: -len("/v1/messages")] or "/"] += 1
        fault = self._fault(key, stream)
        total = sum(self.by_path.values())
        if self.outage is not None and self.outage[0] <= total <= self.outage[1]:
            if target.startswith(self.outage_path + "/"):
                fault = "529"
        self.history.setdefault(key, []).append(fault or "ok")
        if fault is not None:
            self.faults[fault] += 1
        tokens = input_tokens_of(body)
        self.unfinished += 1
        try:
            if fault in ("429", "500", "529") or (fault in ("inband_before", "inband_after") and not stream):
                status = {"429": 429, "500": 500, "inband_after": 500}.get(fault or "", 529)
                kind = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}[status]
                extra = [(b"retry-after", b"0")] if status == 429 else []
                await self._send_json(conn, writer, status, _error(kind, f"injected {fault}"), extra)
                return True
            if fault == "reset":
                writer.transport.abort()
                return False
            if fault == "stall":
                await self._pause(closed, self.stall_s)
                return False
            if stream:
                return await self._stream(conn, writer, key, tokens, fault, closed)
            data = json.dumps(expected_message(key, tokens)).encode()
            if fault == "cut":
                head = h11.Response(
                    status_code=200,
                    headers=[("content-type", "application/json"), ("content-length", str(len(data)))],
                )
                writer.write(conn.send(head) or b"")
                writer.write(conn.send(h11.Data(data=data[: len(data) // 2])) or b"")
                await writer.drain()
                writer.transport.abort()
                return False
            if fault in ("trickle", HOLD) and not await self._pause(closed, self.trickle_s * 4):
                return False
            message = json.loads(data)
            self.written.setdefault(key, []).append(message)
            await self._send_json(conn, writer, 200, message)
            return True
        finally:
            self.unfinished -= 1

    async def _stream(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        key: str,
        tokens: int,
        fault: str | None,
        closed: asyncio.Future[bytes],
    ) -> bool:
        events = expected_events(key, tokens)
        head = h11.Response(
            status_code=200,
            headers=[
                ("content-type", "text/event-stream; charset=utf-8"),
                ("request-id", f"req_fault_{key}"),
                ("transfer-encoding", "chunked"),
            ],
        )
        writer.write(conn.send(head) or b"")
        first_delta = 2
        if fault == "inband_before":
            events = events[:1] + [_error("overloaded_error", "injected inband_before")]
        elif fault == "inband_after":
            cut = first_delta + self._rng.randint(1, len(events) - first_delta - 4)
            events = events[:cut] + [_error("overloaded_error", "injected inband_after")]
        cut_at = None
        if fault == "cut":
            cut_at = first_delta + self._rng.randint(1, len(events) - first_delta - 4)
        written = self.written.setdefault(key, [])
        for i, event in enumerate(events):
            if i == cut_at:
                await writer.drain()
                writer.transport.abort()
                return False
            writer.write(conn.send(h11.Data(data=_sse(event))) or b"")
            written.append(event)
            if i == 1:
                writer.write(conn.send(h11.Data(data=_sse({"type": "ping"}))) or b"")
            if fault == "trickle" or (fault == HOLD and i == 1):
                await writer.drain()
                if not await self._pause(closed, self.hold_s if fault == HOLD else self.trickle_s):
                    return False
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        return True

    async def _send_json(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        data: dict[str, Any],
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        payload = json.dumps(data).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"request-id", b"req_fault"),
            *(extra or []),
        ]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
        writer.write(conn.send(h11.Data(data=payload)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
