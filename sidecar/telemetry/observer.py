"""The live telemetry: per-request and per-attempt observers feeding metrics and spans.

Costs on the hot path, per request: a perf_counter at arrival and at the end, a few per upstream
read of a stream (one when it carries content deltas, two around each wait), the decoding of
``message_start``, ``message_delta`` and ``error`` events only (other events are looked at by
name), and, at the end, one increment or observation per instrument on label children cached per
label set. Time-per-token samples are bucketed locally and added once. Spans, when tracing is on,
are two per request (SERVER, CLIENT per attempt).

Telemetry never fails a request: an unexpected error in here is logged and the request goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from ..config import Config
from ..core import (
    Answer,
    AttemptObserver,
    Call,
    EventStream,
    RequestObserver,
    StreamEvent,
    Target,
    UpstreamInfo,
)
from ..errors import ERROR_TYPES, SidecarError
from ..routing.router import is_glob
from .hook import Telemetry
from .metrics import TPOT_BOUNDS, Cell, Instruments, TpotAccumulator
from .tracing import CLIENT, ERROR, SERVER, Tracing, format_traceparent

if TYPE_CHECKING:
    from ..admission.gate import Admission
    from ..admission.pacing import Pacers

__all__ = ["LiveTelemetry"]

request_log = logging.getLogger("sidecar.requests")
log = logging.getLogger("sidecar.telemetry")

_GRPC_SERVICE = "sidecar.messages.v1.Messages"
SHUTDOWN_TIMEOUT = 5.0  # seconds the span queue may take to flush at stop


def _http(path: str, operation: str) -> tuple[str, str, dict[str, Any]]:
    attrs = {"http.request.method": "POST", "http.route": path}
    return operation, f"POST {path}", attrs


def _grpc(method: str, operation: str) -> tuple[str, str, dict[str, Any]]:
    attrs = {"rpc.system": "grpc", "rpc.service": _GRPC_SERVICE, "rpc.method": method}
    return operation, f"{_GRPC_SERVICE}/{method}", attrs


# (door, method) -> (operation, SERVER span name, its static attributes)
_METHODS: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {
    ("http", "/v1/messages"): _http("/v1/messages", "chat"),
    ("http", "/v1/messages/count_tokens"): _http("/v1/messages/count_tokens", "count_tokens"),
    ("grpc", "CreateMessage"): _grpc("CreateMessage", "chat"),
    ("grpc", "StreamMessage"): _grpc("StreamMessage", "chat"),
    ("grpc", "CountTokens"): _grpc("CountTokens", "count_tokens"),
}

# Outcomes: what an error type's HTTP status class says.
SUCCESS, CLIENT_ERROR, SERVER_ERROR, CANCELLED = "success", "client_error", "server_error", "cancelled"
_GRPC_OK, _GRPC_CANCELLED = 0, 1


class _Failure:
    """An error as telemetry records it: its type (raw, for spans; bounded, for labels)."""

    __slots__ = ("error_type", "label", "outcome", "status")

    def __init__(self, error_type: str, status: int) -> None:
        self.error_type = error_type
        entry = ERROR_TYPES.get(error_type)
        self.label = error_type if entry is not None else "other"
        self.status = status  # the HTTP status the error was (or would be) answered with
        # The class of the type's own status (an upstream's 503 is an overloaded_error, 529).
        self.outcome = CLIENT_ERROR if (entry[0] if entry is not None else status) < 500 else SERVER_ERROR


def _failure(error: BaseException) -> _Failure:
    if isinstance(error, SidecarError):
        return _Failure(error.error_type, error.status)
    return _Failure("api_error", 500)


def _failure_of_type(error_type: Any) -> _Failure:
    if not isinstance(error_type, str) or not error_type:
        error_type = "api_error"
    entry = ERROR_TYPES.get(error_type)
    return _Failure(error_type, entry[0] if entry else 500)


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


# Only what telemetry reads from a JSON Message; msgspec skips everything else (content too).
class _Details(msgspec.Struct):
    thinking_tokens: int | None = None


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: _Details | None = None


class _Message(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    usage: _Usage | None = None


_decode_message = msgspec.json.Decoder(_Message).decode
_WATCHED = frozenset({"message_start", "message_delta", "error", "message_stop"})


class LiveTelemetry(Telemetry):
    """Metrics (prometheus_client) and/or traces (OpenTelemetry), per ``config.telemetry``."""

    def __init__(self, config: Config, traces_endpoint: str | None, env: Mapping[str, str]) -> None:
        settings = config.telemetry
        self.ins: Instruments | None = Instruments() if settings.metrics else None
        self.tracing: Tracing | None = (
            Tracing(traces_endpoint, settings.traces, env) if traces_endpoint else None
        )
        self.metrics_enabled = self.ins is not None
        self.tracing_enabled = self.tracing is not None
        self._limit = settings.model_label_limit
        self.request_log = settings.request_log
        self._glob_models: set[str] = set()
        self._globs: dict[str, bool] = {}
        self._cells: dict[tuple[str, ...], Cell] = {}
        self._gauges: dict[tuple[str, str], Any] = {}
        self._servers: dict[UpstreamInfo, dict[str, Any]] = {}

    def begin(self, door: str, method: str, headers: Mapping[str, str]) -> RequestObserver:
        return _Request(self, door, method, headers)

    def render_metrics(self) -> tuple[bytes, str] | None:
        return None if self.ins is None else self.ins.render()

    def config_reload(self, result: str) -> None:
        if self.ins is not None:
            self.ins.config_reloads.labels(result).inc()

    def watch_breakers(self, source: Callable[[], Iterable[tuple[str, str, str]]]) -> None:
        if self.ins is not None:
            self.ins.watch_breakers(source)

    def watch_admission(self, source: Callable[[], tuple[Admission | None, Pacers]]) -> None:
        if self.ins is not None:
            self.ins.watch_admission(source)

    async def aclose(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Flush queued spans, waiting at most ``timeout`` seconds: an unreachable collector
        must not hold the process up (the flush goes on in a daemon thread, lost at exit)."""
        if self.tracing is None:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        def shutdown() -> None:
            try:
                assert self.tracing is not None
                self.tracing.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                    loop.call_soon_threadsafe(finished)

        threading.Thread(target=shutdown, name="sidecar-trace-shutdown", daemon=True).start()
        try:
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            log.warning("spans not exported within %.0f s of shutdown were dropped", timeout)

    # -- bounded labels, cached children ---------------------------------------------------------
    def model_label(self, target: Target) -> str:
        """The ``model`` label: exact routes' models as they are, glob routes' first N, then other."""
        glob = self._globs.get(target.route)
        if glob is None:
            glob = self._globs[target.route] = is_glob(target.route)
        model = target.model
        if not glob or model in self._glob_models:
            return model
        if len(self._glob_models) < self._limit:
            self._glob_models.add(model)
            return model
        return "other"

    def cell(
        self, door: str, operation: str, target: Target | None, upstream: UpstreamInfo | None, stream: str
    ) -> Cell:
        assert self.ins is not None
        if target is None or upstream is None:
            key: tuple[str, ...] = (door, operation, "", "", "", "", stream)
        else:
            key = (
                door,
                operation,
                target.route,
                target.upstream,
                upstream.provider,
                self.model_label(target),
                stream,
            )
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = Cell(self.ins, key)
        return cell

    def gauge(self, door: str, operation: str) -> Any:
        assert self.ins is not None
        key = (door, operation)
        child = self._gauges.get(key)
        if child is None:
            child = self._gauges[key] = self.ins.in_flight.labels(door, operation)
        return child

    def server_attributes(self, upstream: UpstreamInfo) -> dict[str, Any]:
        """``server.address``/``server.port`` of an upstream with a base URL (computed once)."""
        attrs = self._servers.get(upstream)
        if attrs is None:
            attrs = {}
            base_url = getattr(upstream, "base_url", None)
            if isinstance(base_url, str):
                parts = urlsplit(base_url)
                if parts.hostname:
                    attrs["server.address"] = parts.hostname
                    port = parts.port or (443 if parts.scheme == "https" else 80)
                    attrs["server.port"] = port
            self._servers[upstream] = attrs
        return attrs


class _Request(RequestObserver):
    __slots__ = (
        "cell",
        "door",
        "done",
        "failure",
        "first_token",
        "gauge",
        "model",
        "op",
        "request_id",
        "span",
        "start",
        "stream",
        "target",
        "tel",
        "tokens",
        "tpot",
        "upstreams",
        "wait",
    )

    def __init__(self, tel: LiveTelemetry, door: str, method: str, headers: Mapping[str, str]) -> None:
        self.start = perf_counter()
        self.tel = tel
        self.door = door
        operation, span_name, attributes = _METHODS.get((door, method)) or (method, method, {})
        self.op = operation
        self.cell: Cell | None = None
        self.done = False
        self.failure: _Failure | None = None  # seen in a stream (the door saw a relayed stream)
        self.first_token: float | None = None
        self.tpot: TpotAccumulator | None = None
        self.tokens = [0, 0, 0, 0, 0]  # input, cache_read, cache_creation, output, thinking
        self.upstreams = 0  # attempts made
        self.wait = 0.0  # seconds spent waiting for upstreams
        self.request_id = ""
        self.model = ""  # as the client asked
        self.stream = False
        self.target: Target | None = None  # the last attempt's
        self.gauge: Any = None
        if tel.ins is not None:
            self.gauge = tel.gauge(door, operation)
            self.gauge.inc()
        self.span: Any = None
        if tel.tracing is not None:
            self.span = tel.tracing.start(span_name, SERVER, tel.tracing.parent(headers), attributes)

    def identify(self, request_id: str) -> None:
        self.request_id = request_id

    def attempt(self, call: Call, target: Target, upstream: UpstreamInfo) -> AttemptObserver:
        self.upstreams += 1
        self.model, self.stream, self.target = call.requested_model or call.model, call.stream, target
        if self.tel.ins is not None:
            self.cell = self.tel.cell(
                self.door, self.op, target, upstream, "true" if call.stream else "false"
            )
        return _Attempt(self, call, target, upstream)

    def finish(self, error: BaseException | None = None, *, cancelled: bool = False) -> None:
        if self.done:
            return
        self.done = True
        end = perf_counter()
        failure = None if cancelled or error is None else _failure(error)
        if failure is None and not cancelled:
            failure = self.failure
        try:
            self._finish(end, failure, cancelled)
        except Exception:
            log.exception("telemetry failed to record a request")

    def _finish(self, end: float, failure: _Failure | None, cancelled: bool) -> None:
        tel = self.tel
        outcome = CANCELLED if cancelled else failure.outcome if failure is not None else SUCCESS
        if tel.request_log:
            self._log(end, failure, cancelled, outcome)
        if tel.ins is not None:
            self.gauge.dec()
            cell = self.cell or tel.cell(self.door, self.op, None, None, "")
            duration = end - self.start
            cell.finished(outcome, failure.label if failure is not None else "", duration)
            if self.upstreams:
                cell.overhead(max(0.0, duration - self.wait))
            if self.first_token is not None:
                cell.ttft(self.first_token - self.start)
            if self.tpot is not None:
                cell.tpot(self.tpot)
            tokens = self.tokens
            if any(tokens):
                cell.tokens((tokens[0], tokens[1], tokens[2], tokens[3], tokens[4]))
                if outcome == SUCCESS and tokens[3] > 0 and duration > 0:
                    cell.tokens_per_second(tokens[3] / duration)
        span = self.span
        if span is not None:
            if span.is_recording():
                attrs: dict[str, Any] = {}
                if self.door == "http":
                    if not cancelled:
                        # A stream that failed after its 200 went out still answered 200.
                        status = 200 if failure is None or failure is self.failure else failure.status
                        attrs["http.response.status_code"] = status
                elif cancelled:
                    attrs["rpc.grpc.status_code"] = _GRPC_CANCELLED
                else:
                    attrs["rpc.grpc.status_code"] = (
                        _GRPC_OK
                        if failure is None
                        else ERROR_TYPES.get(failure.error_type, ERROR_TYPES["api_error"])[1].value[0]
                    )
                if cancelled:
                    attrs["error.type"] = "cancelled"
                elif failure is not None:
                    attrs["error.type"] = failure.error_type
                    if failure.outcome == SERVER_ERROR:
                        span.set_status(ERROR)
                span.set_attributes(attrs)
            span.end()

    def _log(self, end: float, failure: _Failure | None, cancelled: bool, outcome: str) -> None:
        """The request log line: ids, routing, status, tokens, durations; no keys, no content."""
        if cancelled:
            status: int | str = 499 if self.door == "http" else "CANCELLED"
        elif self.door == "http":
            status = 200 if failure is None or failure is self.failure else failure.status
        else:
            status = (
                "OK"
                if failure is None
                else ERROR_TYPES.get(failure.error_type, ERROR_TYPES["api_error"])[1].name
            )
        target = self.target
        duration = end - self.start
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": self.request_id,
            "door": self.door,
            "operation": self.op,
            "model": self.model,
            "upstream": target.upstream if target else "",
            "upstream_model": target.model if target else "",
            "route": target.route if target else "",
            "stream": self.stream,
            "status": status,
            "outcome": outcome,
            "error_type": failure.error_type if failure is not None else "",
            "attempts": self.upstreams,
            "input_tokens": self.tokens[0],
            "cache_read_input_tokens": self.tokens[1],
            "cache_creation_input_tokens": self.tokens[2],
            "output_tokens": self.tokens[3],
            "thinking_tokens": self.tokens[4],
            "duration_ms": round(duration * 1000, 3),
            "upstream_ms": round(self.wait * 1000, 3),
            "overhead_ms": round(max(0.0, duration - self.wait) * 1000, 3) if self.upstreams else None,
            "ttft_ms": round((self.first_token - self.start) * 1000, 3)
            if self.first_token is not None
            else None,
        }
        request_log.info(json.dumps(line, separators=(",", ":")))


class _Attempt(AttemptObserver):
    __slots__ = (
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

    def __init__(self, req: _Request, call: Call, target: Target, upstream: UpstreamInfo) -> None:
        self.req = req
        self.ended = False
        self.complete = False  # the answer arrived whole (a JSON body, or a stream's message_stop)
        self.streamed = False  # the answer is a stream (its failures reach the door as events)
        self.failure: _Failure | None = None
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
        if server is not None and not server.is_recording():
            # Not sampled: the CLIENT span would not be either (every built-in sampler decides
            # the same for a child), so none is made; the upstream still learns the decision.
            _inject(call.headers, server)
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
            span = tracing.start(f"{op} {target.model}", CLIENT, tracing.child_context(server), attrs)
            self.span = span
            # The upstream request carries our CLIENT span as its parent (not the caller's).
            _inject(call.headers, span)
        self.start = perf_counter()

    # -- the hook --------------------------------------------------------------------------------
    def answered(self, answer: Answer) -> Answer:
        now = perf_counter()
        self.wait += now - self.start
        events = answer.events
        if events is not None:
            self.streamed = True
            answer.events = EventStream(self._watch(events.batches()), close=self._closer(events))
            return answer
        if self.req.op == "chat":
            try:
                self._read_json(answer)
            except Exception:
                log.exception("telemetry could not read an answer's usage")
        self.complete = True
        self._end(now)
        return answer

    def failed(self, error: BaseException) -> None:
        now = perf_counter()
        self.wait += now - self.start
        if not isinstance(error, asyncio.CancelledError):
            self.failure = _failure(error)
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

    async def _watch(self, source: AsyncIterator[list[StreamEvent]]) -> AsyncIterator[list[StreamEvent]]:
        """Relay ``source``'s batches unchanged, noting usage, deltas and the time spent waiting.

        Per batch: two clock reads, a look at each event's name, and for a batch with content
        deltas after the first one a bisect into the request's time-per-token buckets."""
        clock = perf_counter
        watched = _WATCHED
        bounds = TPOT_BOUNDS
        seen = False  # a content delta has arrived
        tpot: TpotAccumulator | None = None  # after the first delta, when metrics are on
        last = 0.0  # when the latest content delta arrived
        waiting_since = clock()
        try:
            async for batch in source:
                now = clock()
                self.wait += now - waiting_since
                deltas = 0
                for event in batch:
                    name = event.name
                    if name == "content_block_delta":
                        deltas += 1
                    elif name in watched:
                        self._on_event(name, event)
                if deltas:
                    if tpot is not None:
                        # Deltas that arrived in one read share the gap since the previous one.
                        gap = (now - last) / deltas
                        tpot.counts[bisect_left(bounds, gap)] += deltas
                        tpot.total += gap * deltas
                    elif not seen:
                        seen = True
                        tpot = self._first_deltas(now, deltas)
                    last = now
                waiting_since = -1.0  # the consumer's time is not the upstream's
                yield batch
                waiting_since = clock()
            self.complete = True
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except BaseException as exc:
            if self.failure is None:
                self.failure = _failure(exc)
            raise
        finally:
            end = clock()
            if waiting_since >= 0:
                self.wait += end - waiting_since
            self._end(end)

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
                self._read_usage(data.get("usage"))
            else:  # error
                err = data.get("error")
                self.failure = _failure_of_type(err.get("type") if isinstance(err, dict) else None)
        except Exception:
            log.exception("telemetry could not read a %s event", name)

    def _first_deltas(self, now: float, n: int) -> TpotAccumulator | None:
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
            acc = req.tpot = TpotAccumulator()
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
            msg = _decode_message(answer.raw)
        except msgspec.DecodeError:
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
                span.set_status(ERROR)
            span.set_attributes(attrs)
        span.end()


def _inject(headers: dict[str, str], span: Any) -> None:
    """Name ``span`` as the parent in the upstream request's ``traceparent``/``tracestate``."""
    parent = format_traceparent(span)
    if parent is None:
        return
    headers["traceparent"] = parent[0]
    if parent[1]:
        headers["tracestate"] = parent[1]
    else:
        headers.pop("tracestate", None)


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
