"""The per-attempt observer: one per upstream attempt, reporting to its request's observer.

It makes the attempt's CLIENT span (and names it as the parent in the upstream request), watches
a streamed answer as it is relayed (usage, content deltas, the time spent waiting upstream) or
reads a JSON answer's usage, and at the end records the attempt and adds to its request.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable, Callable
from time import perf_counter
from typing import Any, Protocol

from ..core import (
    Answer,
    AttemptObserver,
    Call,
    EventStream,
    StreamEvent,
    Target,
    UpstreamInfo,
    event_name,
    event_usage,
)
from ..core.jsonbytes import BAD_JSON
from .message import decode_message
from .metrics import TPOT_BOUNDS, Cell, LocalHistogram
from .outcomes import CANCELLED, SUCCESS, Failure, failure_of, failure_of_type
from .registry import Registry

__all__ = ["LiveAttempt", "RequestTally"]

log = logging.getLogger("sidecar.telemetry")


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


_WATCHED = frozenset({"message_start", "message_delta", "error", "message_stop"})


class RequestTally(Protocol):
    """What an attempt reads of its request's observer (``LiveRequest``), and adds to it."""

    tel: Registry
    op: str
    deferred: LiveAttempt | None  # the attempt whose JSON answer is read when the request ends
    span: Any  # the SERVER span, or None
    cell: Cell | None
    failure: Failure | None
    first_token: float | None
    tpot: LocalHistogram | None
    tokens: list[int]
    wait: float


class LiveAttempt(AttemptObserver):
    __slots__ = (
        "answer",
        "answered_at",
        "cache_creation",
        "cache_read",
        "complete",
        "ended",
        "failure",
        "finish_reason",
        "first",
        "input",
        "output",
        "req",
        "response_id",
        "response_model",
        "span",
        "start",
        "streamed",
        "thinking",
        "usage_seen",
        "wait",
    )

    def __init__(self, req: RequestTally, call: Call, target: Target, upstream: UpstreamInfo) -> None:
        self.req = req
        self.answer: Answer | None = None  # a JSON answer to read at the request's end
        self.answered_at = 0.0
        self.ended = False
        self.complete = False  # the answer arrived whole (a JSON body, or a stream's message_stop)
        self.streamed = False  # the answer is a stream (its failures reach the door as events)
        self.failure: Failure | None = None
        self.wait = 0.0
        self.first: float | None = None  # first content delta
        self.input = self.cache_read = self.cache_creation = self.output = self.thinking = 0
        self.usage_seen = False
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reason: str | None = None
        self.span: Any = None
        tracing = req.tel.tracing
        server = req.span
        if tracing is not None and server is not None and not server.is_recording():
            # Not sampled: the CLIENT span would not be either (every built-in sampler decides
            # the same for a child), so none is made; the upstream still learns the decision.
            tracing.inject(call.headers, server)
        elif tracing is not None and server is not None:
            op = req.op
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": op,
                "gen_ai.provider.name": upstream.provider,
                "gen_ai.request.model": target.model,
            }
            attrs.update(req.tel.server_attributes(upstream))
            if op == "chat":
                _request_attributes(call, attrs)
            span = tracing.start(f"{op} {target.model}", tracing.CLIENT, tracing.child_context(server), attrs)
            self.span = span
            # The upstream request carries our CLIENT span as its parent (not the caller's).
            tracing.inject(call.headers, span)
        self.start = perf_counter()

    # -- the hook --------------------------------------------------------------------------------
    def answered(self, answer: Answer) -> Answer:
        # The wait until here is the pipeline's (call.upstream_wait); a stream's is added below.
        now = perf_counter()
        events = answer.events
        if events is not None:
            self.streamed = True
            answer.events = EventStream(self._watch(events.batches()), close=self._closer(events))
            return answer
        self.complete = True
        # Read and recorded when the request finishes, after its answer is written: none of it
        # is on the client's wait (the times are taken now).
        self.answer = answer
        self.answered_at = now
        req = self.req
        if req.deferred is not None:
            req.deferred.settle()
        req.deferred = self
        return answer

    def settle(self) -> None:
        """Record a JSON answer (``answered``): its usage, then the attempt's end."""
        answer = self.answer
        if answer is None:
            return
        self.answer = None
        req = self.req
        if req.deferred is self:
            req.deferred = None
        if req.op == "chat":
            try:
                self._read_json(answer)
            except Exception:
                log.exception("telemetry could not read an answer's usage")
        self._end(self.answered_at)

    def failed(self, error: BaseException) -> None:
        now = perf_counter()
        if not isinstance(error, asyncio.CancelledError):
            self.failure = failure_of(error)
        self._end(now)

    # -- streams ---------------------------------------------------------------------------------
    def _closer(self, events: EventStream) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            try:
                await events.aclose()
            finally:
                # A stream closed before it was read to the end (or at all) ends the attempt too.
                self._end(perf_counter())

        return close

    def _watch(self, source: AsyncIterator[list[StreamEvent]]) -> AsyncIterator[list[StreamEvent]]:
        """Relay ``source``'s batches unchanged, noting usage, deltas and the time spent waiting."""
        return _Watch(self, source)

    def _on_event(self, name: str, event: StreamEvent) -> None:
        if name == "message_stop":
            self.complete = True
            return
        try:
            data = event.data
            if name == "message_start":
                message = data.get("message")
                if isinstance(message, dict):
                    self._read_message(message)
            elif name == "message_delta":
                delta = data.get("delta")
                if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                    self.finish_reason = delta["stop_reason"]
                self._read_usage(event_usage(event))
            else:  # error
                err = data.get("error")
                self.failure = failure_of_type(err.get("type") if isinstance(err, dict) else None)
        except Exception:
            log.exception("telemetry could not read a %s event", name)

    def _first_deltas(self, now: float, n: int) -> LocalHistogram | None:
        """The first content delta(s): time to first token; returns where later gaps go (None
        when metrics are off)."""
        self.first = now
        req = self.req
        if req.first_token is None:
            req.first_token = now
        if req.tel.ins is None:
            return None
        acc = req.tpot
        if acc is None:
            acc = req.tpot = LocalHistogram()
        if n > 1:
            acc.add(0.0, n - 1)  # arrived together with the first
        return acc

    # -- usage -----------------------------------------------------------------------------------
    def _read_message(self, message: dict[str, Any]) -> None:
        if isinstance(message.get("id"), str):
            self.response_id = message["id"]
        if isinstance(message.get("model"), str):
            self.response_model = message["model"]
        if isinstance(message.get("stop_reason"), str):
            self.finish_reason = message["stop_reason"]
        self._read_usage(message.get("usage"))

    def _read_usage(self, usage: Any) -> None:
        """Usage values are cumulative: any value present replaces the one seen before."""
        if not isinstance(usage, dict):
            return
        self.usage_seen = True
        if (v := _int(usage.get("input_tokens"))) is not None:
            self.input = v
        if (v := _int(usage.get("output_tokens"))) is not None:
            self.output = v
        if (v := _int(usage.get("cache_read_input_tokens"))) is not None:
            self.cache_read = v
        if (v := _int(usage.get("cache_creation_input_tokens"))) is not None:
            self.cache_creation = v
        details = usage.get("output_tokens_details")
        if isinstance(details, dict) and (v := _int(details.get("thinking_tokens"))) is not None:
            self.thinking = v

    def _read_json(self, answer: Answer) -> None:
        if answer.message is not None:
            self._read_message(answer.message)
            return
        if answer.raw is None:
            return
        try:
            msg = decode_message(answer.raw)
        except BAD_JSON:
            return
        self.response_id, self.response_model, self.finish_reason = msg.id, msg.model, msg.stop_reason
        u = msg.usage
        if u is not None:
            self.usage_seen = True
            self.input = u.input_tokens or 0
            self.output = u.output_tokens or 0
            self.cache_read = u.cache_read_input_tokens or 0
            self.cache_creation = u.cache_creation_input_tokens or 0
            if u.output_tokens_details is not None:
                self.thinking = u.output_tokens_details.thinking_tokens or 0

    # -- the end ---------------------------------------------------------------------------------
    def _end(self, now: float) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            self._record(now)
        except Exception:
            log.exception("telemetry failed to record an upstream attempt")

    def _record(self, now: float) -> None:
        req = self.req
        failure = self.failure
        cancelled = failure is None and not self.complete
        outcome = CANCELLED if cancelled else failure.outcome if failure is not None else SUCCESS
        req.wait += self.wait
        if failure is not None and self.streamed and req.failure is None:
            req.failure = failure  # a stream that failed after it started (the door relays it)
        if self.usage_seen:
            tokens = req.tokens
            tokens[0] += self.input
            tokens[1] += self.cache_read
            tokens[2] += self.cache_creation
            tokens[3] += self.output
            tokens[4] += self.thinking
        if req.cell is not None:
            req.cell.attempt(outcome, failure.label if failure is not None else "", now - self.start)
        span = self.span
        if span is None:
            return
        if span.is_recording():
            attrs: dict[str, Any] = {}
            if self.response_id:
                attrs["gen_ai.response.id"] = self.response_id
            if self.response_model:
                attrs["gen_ai.response.model"] = self.response_model
            if self.finish_reason:
                attrs["gen_ai.response.finish_reasons"] = (self.finish_reason,)
            if self.usage_seen:
                attrs["gen_ai.usage.input_tokens"] = self.input + self.cache_read + self.cache_creation
                attrs["gen_ai.usage.output_tokens"] = self.output
                # The subsets only when there are any: every attribute costs the SDK a few µs.
                if self.cache_read:
                    attrs["gen_ai.usage.cache_read.input_tokens"] = self.cache_read
                if self.cache_creation:
                    attrs["gen_ai.usage.cache_creation.input_tokens"] = self.cache_creation
                if self.thinking:
                    attrs["gen_ai.usage.reasoning.output_tokens"] = self.thinking
            if self.first is not None:
                attrs["gen_ai.response.time_to_first_chunk"] = self.first - self.start
            if cancelled:
                attrs["error.type"] = "cancelled"
            elif failure is not None:
                attrs["error.type"] = failure.error_type
                tracing = self.req.tel.tracing
                assert tracing is not None  # there is a span
                span.set_status(tracing.ERROR)
            span.set_attributes(attrs)
        span.end()


class _Watch:
    """``LiveAttempt._watch``: relays the batches unchanged, noting usage, deltas and the time
    spent waiting for the upstream; the attempt ends when the stream ends, fails or is closed
    (``aclose``). A class rather than an async generator, so that mypyc compiles this module
    (``setup.py``).

    Per batch: two clock reads, a look at each event's name, and for a batch with content deltas
    after the first one a bisect into the request's time-per-token buckets."""

    __slots__ = ("_attempt", "_done", "_last", "_seen", "_source", "_started", "_tpot", "_waiting_since")

    def __init__(self, attempt: LiveAttempt, source: AsyncIterator[list[StreamEvent]]) -> None:
        self._attempt = attempt
        self._source = source
        self._seen = False  # a content delta has arrived
        self._tpot: LocalHistogram | None = None  # after the first delta, when metrics are on
        self._last = 0.0  # when the latest content delta arrived
        self._waiting_since = -1.0  # while a batch is awaited; the consumer's time is not the upstream's
        self._started = False
        self._done = False

    def __del__(self) -> None:
        # Dropped once started, without ``aclose``: the attempt ends, as a generator's finalizer
        # would run its ``finally``.
        if self._started:
            self._end()

    def __aiter__(self) -> _Watch:
        return self

    async def __anext__(self) -> list[StreamEvent]:
        if self._done:
            raise StopAsyncIteration
        attempt = self._attempt
        self._started = True
        self._waiting_since = perf_counter()
        try:
            batch = await self._source.__anext__()
        except StopAsyncIteration:
            attempt.complete = True
            self._end()
            raise
        except (asyncio.CancelledError, GeneratorExit):
            self._end()
            raise
        except BaseException as exc:
            if attempt.failure is None:
                attempt.failure = failure_of(exc)
            self._end()
            raise
        now = perf_counter()
        attempt.wait += now - self._waiting_since
        self._waiting_since = -1.0
        # Names read and deltas counted in C; only a batch with a watched event is walked.
        names = list(map(event_name, batch))
        deltas = names.count("content_block_delta")
        if deltas != len(names) and not _WATCHED.isdisjoint(names):
            for event in batch:
                if event.name in _WATCHED:
                    attempt._on_event(event.name, event)
        if deltas:
            tpot = self._tpot
            if tpot is not None:
                # Deltas that arrived in one read share the gap since the previous one.
                gap = (now - self._last) / deltas
                tpot.counts[bisect_left(TPOT_BOUNDS, gap)] += deltas
                tpot.total += gap * deltas
            elif not self._seen:
                self._seen = True
                self._tpot = attempt._first_deltas(now, deltas)
            self._last = now
        return batch

    async def aclose(self) -> None:
        self._end()

    def _end(self) -> None:
        if not self._done:
            self._done = True
            end = perf_counter()
            if self._waiting_since >= 0:
                self._attempt.wait += end - self._waiting_since
            self._attempt._end(end)


def _request_attributes(call: Call, attrs: dict[str, Any]) -> None:
    """The GenAI request attributes of a Messages body, for those sent (never any content)."""
    body = call.body
    if (v := _int(body.get("max_tokens"))) is not None:
        attrs["gen_ai.request.max_tokens"] = v
    for key in ("temperature", "top_p", "top_k"):
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[f"gen_ai.request.{key}"] = float(value)
    stops = body.get("stop_sequences")
    if isinstance(stops, list) and stops and all(isinstance(s, str) for s in stops):
        attrs["gen_ai.request.stop_sequences"] = tuple(stops)
    if call.stream:
        attrs["gen_ai.request.stream"] = True
