"""The per-request observer: one per request a door begins, finished by the door.

It holds the SERVER span and the in-flight gauge, adds up what its attempts report (tokens, time
spent waiting for upstreams, a failure seen in a relayed stream), and at the end records the
request's metrics, ends its span and writes the request log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from ..core import AttemptObserver, Call, RequestObserver, Target, UpstreamInfo
from ..errors import grpc_status_for_type
from .attempt import LiveAttempt
from .metrics import Cell, LocalHistogram
from .outcomes import CANCELLED, SERVER_ERROR, SUCCESS, Failure, failure_of
from .registry import Registry

__all__ = ["LiveRequest"]

request_log = logging.getLogger("sidecar.requests")
log = logging.getLogger("sidecar.telemetry")

_GRPC_SERVICE = "sidecar.messages.v1.Messages"


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
    # An entry of a batch the sidecar runs (sidecar.batches): a Messages call without a client.
    ("batch", "/v1/messages"): ("chat", "batch entry", {}),
}

_GRPC_OK, _GRPC_CANCELLED = 0, 1


class LiveRequest(RequestObserver):
    __slots__ = (
        "call",
        "cell",
        "deferred",
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

    def __init__(self, tel: Registry, door: str, method: str, headers: Mapping[str, str]) -> None:
        self.start = perf_counter()
        self.tel = tel
        self.door = door
        operation, span_name, attributes = _METHODS.get((door, method)) or (method, method, {})
        self.op = operation
        self.cell: Cell | None = None
        self.deferred: LiveAttempt | None = None  # settled when this request finishes
        self.done = False
        self.failure: Failure | None = None  # seen in a stream (the door saw a relayed stream)
        self.first_token: float | None = None
        self.tpot: LocalHistogram | None = None
        self.tokens = [0, 0, 0, 0, 0]  # input, cache_read, cache_creation, output, thinking
        self.upstreams = 0  # attempts made
        # Seconds spent waiting for upstreams inside relayed streams (the attempts add them);
        # the wait until each answer, pacing holds included, is the pipeline's
        # ``call.upstream_wait``, the figure Server-Timing uses too (see ``upstream_wait``).
        self.wait = 0.0
        self.call: Call | None = None  # the call, once it reached an upstream
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
            tracing = tel.tracing
            self.span = tracing.start(span_name, tracing.SERVER, tracing.parent(headers), attributes)

    def identify(self, request_id: str) -> None:
        self.request_id = request_id

    def attempt(self, call: Call, target: Target, upstream: UpstreamInfo) -> AttemptObserver:
        self.upstreams += 1
        self.call = call
        self.model, self.stream, self.target = call.requested_model or call.model, call.stream, target
        if self.tel.ins is not None:
            self.cell = self.tel.cell(
                self.door, self.op, target, upstream, "true" if call.stream else "false"
            )
            if self.upstreams > 1:
                self.cell.retry()
        return LiveAttempt(self, call, target, upstream)

    def upstream_wait(self) -> float:
        """Seconds this request waited for upstreams: until their answers (the pipeline's figure,
        pacing holds included) and between the events of relayed streams."""
        return self.wait + (self.call.upstream_wait if self.call is not None else 0.0)

    def finish(self, error: BaseException | None = None, *, cancelled: bool = False) -> None:
        if self.done:
            return
        self.done = True
        end = perf_counter()
        if self.deferred is not None:
            self.deferred.settle()
        failure = None if cancelled or error is None else failure_of(error)
        if failure is None and not cancelled:
            failure = self.failure
        try:
            self._finish(end, failure, cancelled)
        except Exception:
            log.exception("telemetry failed to record a request")
        call = self.call
        if call is not None:
            # The call holds this observer: dropping it here ends the reference cycle, so both
            # are freed by their counts instead of by the cycle collector (about 10 µs a request).
            self.wait += call.upstream_wait
            self.call = None

    def _finish(self, end: float, failure: Failure | None, cancelled: bool) -> None:
        tel = self.tel
        outcome = CANCELLED if cancelled else failure.outcome if failure is not None else SUCCESS
        if tel.request_log:
            self._log(end, failure, cancelled, outcome)
        if tel.ins is not None:
            self.gauge.dec()
            cell = self.cell or tel.cell(self.door, self.op, None, None, "")
            duration = end - self.start
            cell.request(
                outcome,
                failure.label if failure is not None else "",
                duration,
                max(0.0, duration - self.upstream_wait()) if self.upstreams else None,
                None if self.first_token is None else self.first_token - self.start,
                self.tpot,
                self.tokens,
            )
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
                        _GRPC_OK if failure is None else grpc_status_for_type(failure.error_type)[0]
                    )
                if cancelled:
                    attrs["error.type"] = "cancelled"
                elif failure is not None:
                    attrs["error.type"] = failure.error_type
                    if failure.outcome == SERVER_ERROR:
                        assert tel.tracing is not None  # there is a span
                        span.set_status(tel.tracing.ERROR)
                span.set_attributes(attrs)
            span.end()

    def _log(self, end: float, failure: Failure | None, cancelled: bool, outcome: str) -> None:
        """The request log line: ids, routing, status, tokens, durations; no keys, no content."""
        if cancelled:
            status: int | str = 499 if self.door == "http" else "CANCELLED"
        elif self.door == "http":
            status = 200 if failure is None or failure is self.failure else failure.status
        else:
            status = "OK" if failure is None else grpc_status_for_type(failure.error_type)[1]
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
            "upstream_ms": round(self.upstream_wait() * 1000, 3),
            "overhead_ms": round(max(0.0, duration - self.upstream_wait()) * 1000, 3)
            if self.upstreams
            else None,
            "ttft_ms": round((self.first_token - self.start) * 1000, 3)
            if self.first_token is not None
            else None,
        }
        request_log.info(json.dumps(line, separators=(",", ":")))
