"""A fast fake Anthropic upstream for benchmarks.

Raw ``asyncio.Protocol`` + ``httptools`` request parser on uvloop, with every response body
pre-built, so that it costs a few microseconds per request and is never the bottleneck.

Serves ``POST /v1/messages``:

- non-streaming: a realistic ~600-byte ``Message`` JSON (spec section 3) with a ``request-id`` header;
- ``"stream": true`` in the body: a text answer as SSE (spec section 4): ``message_start``,
  ``content_block_start``, ``ping``, N ``content_block_delta`` (default 20), ``content_block_stop``,
  ``message_delta``, ``message_stop``; ``content-type: text/event-stream``, chunked transfer encoding,
  one ``transport.write`` (one HTTP chunk) per event.

Also ``POST /v1/messages/count_tokens`` (``{"input_tokens": 12}``), and ``POST /v1/chat/completions`` as an
OpenAI-compatible server answers it (for the sidecar's ``--provider openai`` path, spec section 8):

- non-streaming: a ``chat.completion`` JSON (~800 bytes) with ``usage`` (``prompt_tokens_details.cached_tokens``,
  ``completion_tokens_details``) and an ``x-request-id`` header;
- ``"stream": true``: ``data: {chunk}`` lines: a role chunk, N content-delta chunks (the same N and texts as
  the Anthropic stream's deltas), a ``finish_reason`` chunk, a usage chunk (``choices: []``) when
  ``stream_options.include_usage`` is set, then ``data: [DONE]``; chunked transfer encoding, one
  ``transport.write`` (one HTTP chunk) per ``data:`` line.

Anything else is a 404 error envelope.
Keep-alive, pipelined requests are answered in order, request bodies may be Content-Length or chunked.

Cancellation probes (``bench/cancel.py``): a ``POST /v1/messages`` whose model is ``bench-hang-before``
is never answered; one whose model is ``bench-hang-after`` (with ``"stream": true``) gets the SSE head,
``message_start``, ``content_block_start`` and one ``content_block_delta``, and then nothing more.
Either way the request's ``metadata.user_id`` is its probe id, and the server records, per id, the
``time.monotonic()`` at which it read the request and at which it saw the connection close (EOF or
connection lost, whichever comes first). On Linux ``time.monotonic()`` is ``CLOCK_MONOTONIC``, one
clock for every process on the machine, so the bench compares it with the client's own reading.
``GET /_bench/closes?id=ID&wait_ms=N`` answers that record as JSON (``{"id", "seen", "closed", "how"}``,
``null`` for what has not happened), waiting up to N ms (at most 10 s) for the close; without ``id``,
all records. The mode is chosen by model name and the id travels in the body, not in headers, so that
ordinary requests cost the server nothing extra (an ``on_header`` callback would add ~1.5 us to each).

Failure injection (the failing-upstream scenario of ``python -m bench``), also chosen by model name, on
``POST /v1/messages``: of the requests whose model is ``bench-fail-20`` every 5th (a per-model counter
shared by all connections: exactly 20 % of them, in a fixed pattern) is answered at once with HTTP 529
``{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}``; the others are answered
normally (JSON or SSE). With ``bench-fail-20-inband``, a failing ``"stream": true`` request gets HTTP 200
and an SSE stream of ``message_start`` then an in-band ``event: error`` (the same overloaded error),
and ends there, as the real API reports an overload mid-stream; its failing non-streaming requests get
the 529. ``GET /_bench/failures`` answers the counters as JSON: ``{MODEL: {"requests": N, "failed": M}}``.

Run alone: ``python -m bench.fake_upstream --port 0`` prints
``fake upstream listening on http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import parse_qs

import httptools
import msgspec

from bench._lifetime import until_stopped

DEFAULT_MODEL = "claude-sonnet-4-6"
MAX_BODY = 32 * 1024 * 1024  # the real API's Messages limit
_MAX_CACHED_MODELS = 64
_MAX_QUEUED = 1024  # pipelined requests waiting behind a delayed response, per connection

# ~40 characters per delta, as a model streams it.
_WORDS = (
    "The quick brown fox jumps over the lazy dog while the benchmark counts every event it sees; "
    "each delta carries a short piece of text, much like a real model streaming tokens one by one."
).split()


@dataclass(frozen=True)
class UpstreamConfig:
    """How the fake upstream answers."""

    deltas: int = 20  # content_block_delta events per streamed answer
    delay_ms: float = 0.0  # wait before the response head (per request)
    event_gap_ms: float = 0.0  # wait between SSE events


class _Meta(msgspec.Struct):
    user_id: str | None = None


class _Req(msgspec.Struct):
    model: str = DEFAULT_MODEL
    stream: bool = False
    metadata: _Meta | None = None


_decode_req = msgspec.json.Decoder(_Req).decode


class _StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class _ChatReq(msgspec.Struct):
    """What the fake reads of a chat-completions request (a decoder of its own: the Messages path is
    untouched)."""

    model: str = DEFAULT_MODEL
    stream: bool | None = None
    stream_options: _StreamOptions | None = None


_decode_chat_req = msgspec.json.Decoder(_ChatReq).decode


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _delta_texts(n: int) -> list[str]:
    texts: list[str] = []
    for i in range(n):
        a = _WORDS[(i * 7) % len(_WORDS)]
        b = _WORDS[(i * 7 + 1) % len(_WORDS)]
        c = _WORDS[(i * 7 + 2) % len(_WORDS)]
        texts.append(f"{a} {b} {c} " if i else f"{a.capitalize()} {b} {c} ")
    return texts


def message_json(model: str) -> bytes:
    """The non-streaming Message body (~600 bytes)."""
    text = (
        "Here is a short answer to your question. The sidecar forwards this message unchanged, so the "
        "benchmark measures only the proxy's own cost: parsing the request, calling the upstream, and "
        "copying the answer back to the client."
    )
    msg = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 48,
            "service_tier": "standard",
        },
    }
    return _compact(msg)


def sse_events(model: str, deltas: int) -> list[bytes]:
    """The SSE events of a streamed text answer, each ``event: X\\ndata: {...}\\n\\n``."""

    def ev(name: str, data: dict[str, object]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _compact(data) + b"\n\n"

    start_msg: dict[str, object] = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
            "service_tier": "standard",
        },
    }
    events = [
        ev("message_start", {"type": "message_start", "message": start_msg}),
        ev(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ev("ping", {"type": "ping"}),
    ]
    for text in _delta_texts(deltas):
        events.append(
            ev(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            )
        )
    events.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        ev(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 3 * deltas + 1},
            },
        )
    )
    events.append(ev("message_stop", {"type": "message_stop"}))
    return events


def sse_event_count(deltas: int) -> int:
    """Events in one streamed answer: 6 fixed events plus the deltas."""
    return deltas + 6


CHAT_ID = "chatcmpl-BbZxVhq7S1TsDw6yqF0mKc3dJ8rQe"
CHAT_CREATED = 1767225600
CHAT_FINGERPRINT = "fp_b1e2c3d4e5"


def _chat_usage(prompt: int, completion: int) -> dict[str, object]:
    """An OpenAI ``usage`` object (a 12-token prompt is below OpenAI's 1024-token caching minimum)."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion_json(model: str) -> bytes:
    """The non-streaming ``chat.completion`` body (~800 bytes), as OpenAI answers it."""
    text = (
        "Here is a short answer to your question. The sidecar translates this chat completion into a "
        "Messages answer, so the benchmark measures the proxy's own cost on the translated path: parsing "
        "and translating the request, calling the upstream, and translating the answer back."
    )
    completion = {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": CHAT_CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _chat_usage(12, 48),
        "service_tier": "default",
        "system_fingerprint": CHAT_FINGERPRINT,
    }
    return _compact(completion)


def chat_chunks(model: str, deltas: int, include_usage: bool) -> list[bytes]:
    """The ``data: ...\n\n`` lines of a streamed chat completion, ``data: [DONE]`` last.

    With ``include_usage`` every chunk carries ``"usage": null`` and a last chunk (``choices: []``)
    the usage, as OpenAI sends them.
    """

    def chunk(delta: dict[str, object], finish: str | None) -> bytes:
        obj: dict[str, object] = {
            "id": CHAT_ID,
            "object": "chat.completion.chunk",
            "created": CHAT_CREATED,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": CHAT_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            obj["usage"] = None
        return b"data: " + _compact(obj) + b"\n\n"

    lines = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    lines.extend(chunk({"content": text}, None) for text in _delta_texts(deltas))
    lines.append(chunk({}, "stop"))
    if include_usage:
        usage = {
            "id": CHAT_ID,
            "object": "chat.completion.chunk",
            "created": CHAT_CREATED,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": CHAT_FINGERPRINT,
            "choices": [],
            "usage": _chat_usage(12, 3 * deltas + 1),
        }
        lines.append(b"data: " + _compact(usage) + b"\n\n")
    lines.append(b"data: [DONE]\n\n")
    return lines


def chat_chunk_count(deltas: int, include_usage: bool) -> int:
    """``data:`` lines in one streamed chat completion: role, deltas, finish, [usage], [DONE]."""
    return deltas + 3 + (1 if include_usage else 0)


def _chat_error_body(message: str) -> bytes:
    return _compact(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    )


def _error_body(status: int, etype: str, message: str) -> bytes:
    return _compact(
        {
            "type": "error",
            "error": {"type": etype, "message": message},
            "request_id": "req_bench_error",
        }
    )


BENCH_PREFIX = "bench-"  # every special model starts so: ordinary requests pay one startswith
FAIL_MODEL = "bench-fail-20"  # every FAIL_EVERY-th request: HTTP 529 overloaded_error
FAIL_INBAND_MODEL = "bench-fail-20-inband"  # streams: 200, message_start, in-band error; JSON: 529
FAIL_EVERY = 5
_FAIL_MODELS = {FAIL_MODEL: False, FAIL_INBAND_MODEL: True}  # model -> in-band for streams
OVERLOADED_STATUS = 529
HANG_BEFORE_MODEL = "bench-hang-before"  # never answered
HANG_AFTER_MODEL = "bench-hang-after"  # SSE: message_start, content_block_start, one delta, then nothing
_HANG_PREFIX = "bench-hang-"
_MAX_CLOSE_RECORDS = 10_000
_MAX_CLOSE_WAIT_S = 10.0

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    413: b"Payload Too Large",
    529: b"Overloaded",
}
_COMMON_HEADERS = b"anthropic-organization-id: 00000000-0000-4000-8000-000000000000\r\n"
_OPENAI_HEADERS = (
    b"openai-organization: bench-org\r\nopenai-processing-ms: 1\r\nopenai-version: 2020-10-01\r\n"
)
_MESSAGES_PATHS = (b"/v1/messages", b"/v1/messages/count_tokens")
CHAT_PATH = b"/v1/chat/completions"


class _Answers:
    """Pre-built response pieces, shared by all connections."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self._json: dict[str, bytes] = {}
        self._sse: dict[str, tuple[bytes, ...]] = {}
        self._chat_json: dict[str, bytes] = {}
        self._chat_sse: dict[tuple[str, bool], tuple[bytes, ...]] = {}
        self.count_tokens = b'{"input_tokens":12}'
        self.not_found = _error_body(404, "not_found_error", "Not found")
        self.bad_json = _error_body(400, "invalid_request_error", "Request body is not valid JSON")
        self.too_large = _error_body(413, "request_too_large", "Request exceeds the maximum allowed size")
        self.chat_bad_json = _chat_error_body("We could not parse the JSON body of your request.")
        self.chat_too_large = _chat_error_body("Request exceeds the maximum allowed size")
        self.overloaded = _compact(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        )
        self.failures: dict[str, dict[str, int]] = {m: {"requests": 0, "failed": 0} for m in _FAIL_MODELS}
        self._inband: dict[str, tuple[bytes, ...]] = {}

    def fails(self, model: str) -> bool:
        """Count one request of a failure model; True when it is the one in FAIL_EVERY that fails."""
        counts = self.failures[model]
        counts["requests"] += 1
        if counts["requests"] % FAIL_EVERY:
            return False
        counts["failed"] += 1
        return True

    def inband_error_chunks(self, model: str) -> tuple[bytes, ...]:
        """A stream that fails in-band: ``message_start``, then an ``error`` event, then the end."""
        chunks = self._inband.get(model)
        if chunks is None:
            error = b"event: error\ndata: " + self.overloaded + b"\n\n"
            framed = [b"%x\r\n%b\r\n" % (len(e), e) for e in (sse_events(model, 0)[0], error)]
            framed[-1] += b"0\r\n\r\n"
            chunks = self._inband[model] = tuple(framed)
        return chunks

    def _model_key(self, model: str) -> str:
        if model in self._json or len(self._json) < _MAX_CACHED_MODELS:
            return model
        return DEFAULT_MODEL

    def json_body(self, model: str) -> bytes:
        model = self._model_key(model)
        body = self._json.get(model)
        if body is None:
            body = self._json[model] = message_json(model)
        return body

    def hang_chunks(self, model: str) -> tuple[bytes, ...]:
        """The head of a streamed answer that then hangs: message_start, content_block_start, one delta."""
        events = sse_events(model, 1)
        return tuple(b"%x\r\n%b\r\n" % (len(e), e) for e in (events[0], events[1], events[3]))

    def sse_chunks(self, model: str) -> tuple[bytes, ...]:
        """Every event framed as one HTTP chunk; the last one also carries the terminating chunk."""
        model = self._model_key(model)
        chunks = self._sse.get(model)
        if chunks is None:
            framed = [b"%x\r\n%b\r\n" % (len(e), e) for e in sse_events(model, self.config.deltas)]
            framed[-1] += b"0\r\n\r\n"
            chunks = self._sse[model] = tuple(framed)
        return chunks

    def chat_json_body(self, model: str) -> bytes:
        if model not in self._chat_json and len(self._chat_json) >= _MAX_CACHED_MODELS:
            model = DEFAULT_MODEL
        body = self._chat_json.get(model)
        if body is None:
            body = self._chat_json[model] = chat_completion_json(model)
        return body

    def chat_sse_chunks(self, model: str, include_usage: bool) -> tuple[bytes, ...]:
        """Every ``data:`` line framed as one HTTP chunk; the last one also carries the terminating chunk."""
        if (model, include_usage) not in self._chat_sse and len(self._chat_sse) >= _MAX_CACHED_MODELS:
            model = DEFAULT_MODEL
        key = (model, include_usage)
        chunks = self._chat_sse.get(key)
        if chunks is None:
            lines = chat_chunks(model, self.config.deltas, include_usage)
            framed = [b"%x\r\n%b\r\n" % (len(line), line) for line in lines]
            framed[-1] += b"0\r\n\r\n"
            chunks = self._chat_sse[key] = tuple(framed)
        return chunks


class CloseLog:
    """Per probe id: when the request was read and when its connection closed (``time.monotonic()``).

    Shared by all connections of one server; bounded (the oldest records are dropped).
    """

    def __init__(self) -> None:
        self.records: dict[str, dict[str, object]] = {}
        self._waiters: dict[str, list[Callable[[dict[str, object]], None]]] = {}

    def record(self, probe_id: str) -> dict[str, object]:
        rec = self.records.get(probe_id)
        if rec is None:
            rec = {"id": probe_id, "seen": None, "closed": None, "how": None}
            if len(self.records) >= _MAX_CLOSE_RECORDS:
                del self.records[next(iter(self.records))]
            self.records[probe_id] = rec
        return rec

    def seen(self, probe_id: str, now: float) -> None:
        self.record(probe_id)["seen"] = now

    def closed(self, probe_id: str, now: float, how: str) -> None:
        rec = self.record(probe_id)
        if rec["closed"] is not None:
            return
        rec["closed"] = now
        rec["how"] = how
        for reply in self._waiters.pop(probe_id, ()):
            reply(rec)

    def when_closed(
        self, probe_id: str, timeout_s: float, reply: Callable[[dict[str, object]], None]
    ) -> None:
        """Call ``reply`` once: with the record when it is closed, or as it is after ``timeout_s``."""
        rec = self.record(probe_id)
        if rec["closed"] is not None or timeout_s <= 0:
            reply(rec)
            return
        fired = [False]

        def once(r: dict[str, object]) -> None:
            if not fired[0]:
                fired[0] = True
                reply(r)

        self._waiters.setdefault(probe_id, []).append(once)

        def expire() -> None:
            waiters = self._waiters.get(probe_id)
            if waiters is not None and once in waiters:
                waiters.remove(once)
                if not waiters:
                    del self._waiters[probe_id]
            once(self.record(probe_id))

        asyncio.get_running_loop().call_later(timeout_s, expire)


@dataclass
class _Pending:
    """One parsed request waiting for its (delayed) answer."""

    status: int
    body: bytes
    sse: tuple[bytes, ...] | None
    keep_alive: bool
    http10: bool
    # "hang" (a cancellation probe), "closes" (GET /_bench/closes), "failures" (GET /_bench/failures);
    # "" = ordinary
    bench: str = ""
    probe_id: str = ""
    openai: bool = False  # a chat-completions answer: OpenAI's headers


class UpstreamProtocol(asyncio.Protocol):
    """One client connection. Without delays every answer is written from ``data_received``."""

    def __init__(self, answers: _Answers, counter: list[int], closes: CloseLog | None = None) -> None:
        self._answers = answers
        self._counter = counter
        self._closes = closes if closes is not None else CloseLog()
        self._probe_id: str | None = None  # set while this connection holds a hanging probe
        self._delayed = answers.config.delay_ms > 0 or answers.config.event_gap_ms > 0
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._body_len = 0
        self._closing = False
        self._queue: deque[_Pending] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses; both loops set TCP_NODELAY.
        self._transport = cast(asyncio.Transport, transport)
        if self._delayed:
            self._wakeup = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run_queue())

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()
        except httptools.HttpParserError:
            self._write_simple(400, self._answers.bad_json, keep_alive=False, http10=False)
            self._close()

    def eof_received(self) -> bool | None:
        if self._probe_id is not None:
            self._closes.closed(self._probe_id, time.monotonic(), "eof")
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self._probe_id is not None:
            self._closes.closed(self._probe_id, time.monotonic(), "lost" if exc is None else "reset")
        self._closing = True
        self._transport = None
        if self._worker is not None:
            self._worker.cancel()

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closing:
            self._transport.resume_reading()

    # -- httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []
        self._body_len = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._body_len <= MAX_BODY:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._closing:
            return
        parser = self._parser
        keep_alive = parser.should_keep_alive()
        http10 = parser.get_http_version() == "1.0"
        if http10:
            keep_alive = False
        pending = self._answer(parser.get_method(), keep_alive, http10)
        if pending.bench:
            self._bench(pending)
            return
        if not self._delayed:
            self._send(pending)
            if not keep_alive:
                self._close()
            return
        if len(self._queue) >= _MAX_QUEUED:
            self._close()
            return
        self._queue.append(pending)
        assert self._wakeup is not None
        self._wakeup.set()
        if not keep_alive:
            self._closing = True  # ignore whatever follows; the worker closes after answering

    # -- answering -----------------------------------------------------------------------------
    def _answer(self, method: bytes, keep_alive: bool, http10: bool) -> _Pending:
        answers = self._answers
        path = self._url.split(b"?", 1)[0]
        if method != b"POST" or path not in _MESSAGES_PATHS:
            if method == b"POST" and path == CHAT_PATH:
                return self._chat_answer(keep_alive, http10)
            if method == b"GET" and path == b"/_bench/closes":
                return _Pending(200, b"", None, False, http10, bench="closes")
            if method == b"GET" and path == b"/_bench/failures":
                return _Pending(200, _compact(answers.failures), None, False, http10, bench="failures")
            return _Pending(404, answers.not_found, None, keep_alive, http10)
        if self._body_len > MAX_BODY:
            return _Pending(413, answers.too_large, None, keep_alive, http10)
        raw = b"".join(self._body)
        try:
            req = _decode_req(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return _Pending(400, answers.bad_json, None, keep_alive, http10)
        if path == b"/v1/messages/count_tokens":
            return _Pending(200, answers.count_tokens, None, keep_alive, http10)
        if req.model.startswith(BENCH_PREFIX) and path == b"/v1/messages":
            if req.model.startswith(_HANG_PREFIX):
                probe_id = req.metadata.user_id if req.metadata is not None else None
                sse = answers.hang_chunks(req.model) if req.stream and req.model == HANG_AFTER_MODEL else None
                return _Pending(200, b"", sse, True, http10, bench="hang", probe_id=probe_id or "")
            inband = _FAIL_MODELS.get(req.model)
            if inband is not None and answers.fails(req.model):
                if inband and req.stream:
                    return _Pending(200, b"", answers.inband_error_chunks(req.model), keep_alive, http10)
                return _Pending(OVERLOADED_STATUS, answers.overloaded, None, keep_alive, http10)
        if req.stream:
            return _Pending(200, b"", answers.sse_chunks(req.model), keep_alive, http10)
        return _Pending(200, answers.json_body(req.model), None, keep_alive, http10)

    def _chat_answer(self, keep_alive: bool, http10: bool) -> _Pending:
        """``POST /v1/chat/completions`` (kept off the Messages path, which pays nothing for it)."""
        answers = self._answers
        if self._body_len > MAX_BODY:
            return _Pending(413, answers.chat_too_large, None, keep_alive, http10, openai=True)
        try:
            req = _decode_chat_req(b"".join(self._body))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return _Pending(400, answers.chat_bad_json, None, keep_alive, http10, openai=True)
        if req.stream:
            usage = req.stream_options is not None and req.stream_options.include_usage is True
            sse = answers.chat_sse_chunks(req.model, usage)
            return _Pending(200, b"", sse, keep_alive, http10, openai=True)
        return _Pending(200, answers.chat_json_body(req.model), None, keep_alive, http10, openai=True)

    # -- cancellation probes ----------------------------------------------------------------------
    def _bench(self, p: _Pending) -> None:
        """A probe or a query: the last request this connection handles (what follows is ignored)."""
        self._closing = True
        if p.bench == "closes":
            self._closes_query()
            return
        if p.bench == "failures":
            self._reply_json(p.body)
            return
        if not p.probe_id:
            self._write_simple(400, self._answers.bad_json, keep_alive=False, http10=p.http10)
            self._close()
            return
        self._probe_id = p.probe_id
        self._closes.seen(p.probe_id, time.monotonic())
        if p.sse is not None and self._transport is not None:  # hang after the first delta
            self._transport.write(self._sse_head(p) + b"".join(p.sse))
        # ... and never another byte: eof_received / connection_lost record the close.

    def _closes_query(self) -> None:
        query = parse_qs(self._url.partition(b"?")[2].decode("latin-1"))
        probe_id = query.get("id", [""])[0]
        if not probe_id:
            self._reply_json(_compact({"closes": list(self._closes.records.values())}))
            return
        try:
            wait_s = min(float(query.get("wait_ms", ["0"])[0]) / 1000.0, _MAX_CLOSE_WAIT_S)
        except ValueError:
            wait_s = 0.0
        self._closes.when_closed(probe_id, wait_s, lambda rec: self._reply_json(_compact(rec)))

    def _reply_json(self, body: bytes) -> None:
        self._write_simple(200, body, keep_alive=False, http10=False)
        self._close()

    def _request_id(self, openai: bool = False) -> bytes:
        self._counter[0] += 1
        if openai:
            return b"x-request-id: req_bench%016x\r\n%b" % (self._counter[0], _OPENAI_HEADERS)
        return b"request-id: req_bench%016x\r\n%b" % (self._counter[0], _COMMON_HEADERS)

    def _write_simple(
        self, status: int, body: bytes, keep_alive: bool, http10: bool, openai: bool = False
    ) -> None:
        if self._transport is None:
            return
        head = b"HTTP/1.1 %d %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%b%b\r\n" % (
            status,
            _REASONS.get(status, b"Unknown"),
            len(body),
            self._request_id(openai),
            b"" if keep_alive else b"connection: close\r\n",
        )
        self._transport.write(head + body)

    def _sse_head(self, p: _Pending) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"cache-control: no-cache\r\n%b%b\r\n"
            % (
                self._request_id(p.openai),
                b"connection: close\r\n" if not p.keep_alive else b"transfer-encoding: chunked\r\n",
            )
        )

    def _send(self, p: _Pending) -> None:
        transport = self._transport
        if transport is None:
            return
        if p.sse is None:
            self._write_simple(p.status, p.body, p.keep_alive, p.http10, p.openai)
            return
        transport.write(self._sse_head(p))
        if p.keep_alive:
            for chunk in p.sse:
                transport.write(chunk)
        else:  # close-delimited body: strip the chunk framing
            for chunk in p.sse:
                transport.write(_unchunk(chunk))

    async def _run_queue(self) -> None:
        cfg = self._answers.config
        assert self._wakeup is not None
        for _ in range(1 << 62):  # bounded by the connection's lifetime
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            p = self._queue.popleft()
            if cfg.delay_ms > 0:
                await asyncio.sleep(cfg.delay_ms / 1000)
            transport = self._transport
            if transport is None:
                return
            if p.sse is None or cfg.event_gap_ms <= 0:
                self._send(p)
            else:
                transport.write(self._sse_head(p))
                for i, chunk in enumerate(p.sse):
                    if i:
                        await asyncio.sleep(cfg.event_gap_ms / 1000)
                    if self._transport is None:
                        return
                    self._transport.write(chunk if p.keep_alive else _unchunk(chunk))
            if not p.keep_alive:
                self._close()
                return

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()


def _unchunk(chunk: bytes) -> bytes:
    """Strip the ``SIZE\\r\\n ... \\r\\n`` framing (and a trailing ``0\\r\\n\\r\\n``) from a pre-built chunk."""
    if chunk.endswith(b"0\r\n\r\n"):
        chunk = chunk[: -len(b"0\r\n\r\n")]
    _, _, rest = chunk.partition(b"\r\n")
    return rest[:-2]


async def start_server(
    host: str = "127.0.0.1", port: int = 0, config: UpstreamConfig | None = None
) -> asyncio.Server:
    """Start the fake upstream on the running loop; the caller closes the returned server."""
    answers = _Answers(config or UpstreamConfig())
    counter = [0]
    closes = CloseLog()
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: UpstreamProtocol(answers, counter, closes),
        host=host,
        port=port,
        backlog=1024,
        reuse_address=True,
    )


def server_port(server: asyncio.Server) -> int:
    sockets = server.sockets
    assert sockets
    return int(sockets[0].getsockname()[1])


async def _serve(args: argparse.Namespace) -> None:
    config = UpstreamConfig(deltas=args.deltas, delay_ms=args.delay_ms, event_gap_ms=args.event_gap_ms)
    server = await start_server(args.host, args.port, config)
    print(f"fake upstream listening on http://{args.host}:{server_port(server)}", flush=True)
    try:
        await until_stopped(args.max_seconds)
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=2.0)


def install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fake_upstream", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port (printed)")
    p.add_argument(
        "--deltas", type=int, default=20, help="content deltas per stream (Messages events, chat chunks)"
    )
    p.add_argument("--delay-ms", type=float, default=0.0, help="wait before each response head")
    p.add_argument("--event-gap-ms", type=float, default=0.0, help="wait between SSE events")
    p.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long (safety bound)")
    args = p.parse_args(argv)
    if args.deltas < 0:
        p.error("--deltas must be >= 0")
    install_uvloop()
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
