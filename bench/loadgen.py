"""An asyncio load generator with its own minimal HTTP/1.1 client.

Each connection is an ``asyncio.Protocol`` with an ``httptools.HttpResponseParser``; it keeps the
connection alive and has exactly one request in flight: the next request is written from the parser
callback that completes the previous response (no task switch per request). A run is bounded by a
request count and by a time limit, whichever comes first.

Modes:

- ``json``: a non-streaming Messages request; measures requests/s and latency percentiles.
- ``sse``: the same request with ``"stream": true``; counts SSE events (split on the blank line
  that ends each event) and measures events/s across all connections, plus the time from writing
  the request to receiving the first ``content_block_delta`` (time to first token).

Run alone: ``python -m bench.loadgen http://127.0.0.1:PORT --mode sse -c 8 -n 1000 -d 5``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import httptools

Mode = Literal["json", "sse"]

DEFAULT_MODEL = "claude-sonnet-4-6"
CLIENT_KEY = "bench-client-key"
MAX_CONNECTIONS = 1024
CONNECT_TIMEOUT_S = 5.0
DRAIN_GRACE_S = 10.0  # after the time limit, how long in-flight requests may take to finish
_SSE_HEAD = 40  # bytes of an event in which its ``event:`` line is looked for


def request_body(mode: Mode, model: str = DEFAULT_MODEL) -> bytes:
    """A realistic small Messages request: model, max_tokens, one user message."""
    body: dict[str, object] = {
        "model": model,
        "max_tokens": 1024,
        "messages": [
            {
                "role": "user",
                "content": "Hello, Claude. In one short paragraph, why do proxies add latency?",
            }
        ],
    }
    if mode == "sse":
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def build_request(host: str, port: int, path: str, mode: Mode, model: str = DEFAULT_MODEL) -> bytes:
    body = request_body(mode, model)
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"host: {host}:{port}\r\n"
        f"x-api-key: {CLIENT_KEY}\r\n"
        "anthropic-version: 2023-06-01\r\n"
        "content-type: application/json\r\n"
        "accept: application/json\r\n"
        "user-agent: messages-sidecar-bench/0.1\r\n"
        f"content-length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean (linear interpolation between closest ranks); empty -> {}."""
    if not samples:
        return {}
    s = sorted(samples)
    n = len(s)

    def pct(q: float) -> float:
        pos = (n - 1) * q
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    return {
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
        "max": s[-1],
        "mean": sum(s) / n,
    }


@dataclass
class LoadResult:
    """What one run measured. Latencies and TTFT in milliseconds."""

    mode: str
    url: str
    connections: int
    max_requests: int
    duration_limit_s: float
    completed: int = 0  # responses fully received (any status)
    ok: int = 0  # status 200 (and, for SSE, the stream ended with message_stop)
    errors: int = 0  # non-200, broken streams, connection failures, parse errors
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0  # first request written -> last response completed
    requests_per_s: float = 0.0  # ok responses per second
    latency_ms: dict[str, float] = field(default_factory=dict)
    events: int = 0  # SSE events received in ok responses
    events_per_s: float = 0.0
    ttft_ms: dict[str, float] = field(default_factory=dict)
    event_counts: dict[int, int] = field(default_factory=dict)  # events per SSE response -> responses
    event_names: dict[str, int] = field(default_factory=dict)  # only with count_names=True
    incomplete_streams: int = 0  # SSE responses whose last event was not message_stop
    reconnects: int = 0
    stopped_by: str = ""  # "requests" or "duration"
    loadgen_cpu_s: float = 0.0  # this process's CPU time during the run
    loadgen_cpu_util: float = 0.0  # loadgen_cpu_s / elapsed_s (1.0 = one core busy)
    error_samples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["statuses"] = {str(k): v for k, v in self.statuses.items()}
        d["event_counts"] = {str(k): v for k, v in self.event_counts.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoadResult:
        """The inverse of ``to_dict`` (for results that crossed a process boundary as JSON)."""
        d = dict(d)
        d["statuses"] = {int(k): v for k, v in d.get("statuses", {}).items()}
        d["event_counts"] = {int(k): v for k, v in d.get("event_counts", {}).items()}
        return cls(**d)


class _Run:
    """State shared by all connections of one run."""

    def __init__(self, request: bytes, sse: bool, max_requests: int, count_names: bool) -> None:
        self.request = request
        self.sse = sse
        self.remaining = max_requests
        self.count_names = count_names
        self.deadline = float("inf")
        self.started = False
        self.stopped_by = ""
        self.last_done = 0.0
        self.latencies: list[float] = []
        self.ttfts: list[float] = []
        self.statuses: dict[int, int] = {}
        self.event_counts: dict[int, int] = {}
        self.event_names: dict[str, int] = {}
        self.events = 0
        self.completed = 0
        self.ok = 0
        self.errors = 0
        self.incomplete = 0
        self.error_samples: list[str] = []
        self.conns: list[_Conn] = []  # every connection opened, to abort them all at the end

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(what)

    def take(self) -> bool:
        """Reserve the next request, or say the run is over."""
        if self.remaining <= 0:
            self.stopped_by = self.stopped_by or "requests"
            return False
        if time.perf_counter() >= self.deadline:
            self.stopped_by = self.stopped_by or "duration"
            return False
        self.remaining -= 1
        return True


class _Conn(asyncio.Protocol):
    """One keep-alive connection with one request in flight."""

    def __init__(self, run: _Run, done: asyncio.Future[str]) -> None:
        self._run = run
        self._done = done
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._in_flight = False
        self._t0 = 0.0
        self._status = 0
        self._headers_done = False
        self._eof_body = True  # no content-length / chunked: the body ends at close
        self._tail = b""
        self._events = 0
        self._got_delta = False
        self._last_event = b""

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def start(self) -> None:
        self._issue()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._in_flight:
                self._in_flight = False
                self._run.error(f"parse error: {exc}")
            if self._transport is not None:
                self._transport.close()
            self._finish("closed")

    def eof_received(self) -> bool | None:
        if self._in_flight and self._headers_done and self._eof_body:
            self._complete()  # a close-delimited body ends here
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._in_flight:
            self._in_flight = False
            self._run.error(f"connection lost mid-request: {exc!r}")
        self._finish("closed")

    # -- httptools callbacks -------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) in (14, 17) and name.lower() in (b"content-length", b"transfer-encoding"):
            self._eof_body = False

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if not self._run.sse:
            return
        data = self._tail + body if self._tail else body
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        parts = data.split(b"\n\n")
        self._tail = parts.pop()
        if not parts:
            return
        self._events += len(parts)
        self._last_event = parts[-1]
        if not self._got_delta:
            for ev in parts:
                if (
                    b"event: content_block_delta" in ev[:_SSE_HEAD]
                    or b"event:content_block_delta" in ev[:_SSE_HEAD]
                ):
                    self._got_delta = True
                    self._run.ttfts.append((time.perf_counter() - self._t0) * 1000.0)
                    break
        if self._run.count_names:
            names = self._run.event_names
            for ev in parts:
                name = _event_name(ev)
                names[name] = names.get(name, 0) + 1

    def on_message_complete(self) -> None:
        if self._in_flight:
            self._complete()

    # -- request cycle -------------------------------------------------------------------------
    def _issue(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            self._finish("closed")
            return
        if not self._run.take():
            self._finish("idle")
            return
        self._in_flight = True
        self._status = 0
        self._headers_done = False
        self._eof_body = True
        self._tail = b""
        self._events = 0
        self._got_delta = False
        self._last_event = b""
        self._t0 = time.perf_counter()
        transport.write(self._run.request)

    def _complete(self) -> None:
        now = time.perf_counter()
        run = self._run
        self._in_flight = False
        run.completed += 1
        run.last_done = now
        status = self._status
        run.statuses[status] = run.statuses.get(status, 0) + 1
        if status != 200:
            run.error(f"status {status}")
        elif run.sse:
            n = self._events
            run.event_counts[n] = run.event_counts.get(n, 0) + 1
            if self._tail.strip() or _event_name(self._last_event) != "message_stop":
                run.incomplete += 1
                run.error(f"stream did not end with message_stop ({n} events)")
            else:
                run.ok += 1
                run.events += n
                run.latencies.append((now - self._t0) * 1000.0)
        else:
            run.ok += 1
            run.latencies.append((now - self._t0) * 1000.0)
        if self._parser.should_keep_alive() and not self._eof_body:
            self._issue()
        else:
            if self._transport is not None:
                self._transport.close()
            self._finish("closed")

    def _finish(self, reason: str) -> None:
        if not self._done.done():
            self._done.set_result(reason)

    def abort(self) -> None:
        if self._in_flight:
            self._in_flight = False
            self._run.error("request still in flight at the end of the grace period")
        if self._transport is not None:
            self._transport.abort()


def _event_name(ev: bytes) -> str:
    for line in ev.split(b"\n", 8)[:8]:
        if line.startswith(b"event:"):
            return line[6:].strip().decode("utf-8", "replace")
    return ""


async def _connect(run: _Run, host: str, port: int) -> tuple[_Conn, asyncio.Future[str]]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()
    _, proto = await asyncio.wait_for(
        loop.create_connection(lambda: _Conn(run, done), host, port), timeout=CONNECT_TIMEOUT_S
    )
    run.conns.append(proto)
    return proto, done


async def run_load(
    url: str,
    mode: Mode = "json",
    connections: int = 1,
    max_requests: int = 1000,
    duration_s: float = 5.0,
    *,
    model: str = DEFAULT_MODEL,
    count_names: bool = False,
) -> LoadResult:
    """Run one measurement against ``url`` (``http://host:port[/path]``, default path ``/v1/messages``).

    All connections are opened before the clock starts. Then each connection sends requests back to
    back until ``max_requests`` were sent in total or ``duration_s`` passed; responses in flight at the
    limit are awaited (up to ``DRAIN_GRACE_S``). A connection the server closes is reopened (bounded).
    """
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(f"connections must be in 1..{MAX_CONNECTIONS}")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"need http://host:port[/path], got {url!r}")
    host, port = parts.hostname, parts.port
    path = parts.path if parts.path not in ("", "/") else "/v1/messages"
    run = _Run(build_request(host, port, path, mode, model), mode == "sse", max_requests, count_names)
    result = LoadResult(
        mode=mode, url=url, connections=connections, max_requests=max_requests, duration_limit_s=duration_s
    )

    opened = await asyncio.gather(
        *(_connect(run, host, port) for _ in range(connections)), return_exceptions=True
    )
    conns: list[tuple[_Conn, asyncio.Future[str]]] = []
    for item in opened:
        if isinstance(item, BaseException):
            run.error(f"connect failed: {item!r}")
        else:
            conns.append(item)
    if not conns:
        result.errors = run.errors
        result.error_samples = run.error_samples
        return result

    reconnect_budget = [max(100, connections * 10)]

    async def drive(conn: _Conn, done: asyncio.Future[str]) -> None:
        for _ in range(reconnect_budget[0] + 1):  # bounded
            reason = await done
            if reason == "idle" or run.remaining <= 0 or time.perf_counter() >= run.deadline:
                return
            if reconnect_budget[0] <= 0:
                run.error("reconnect budget exhausted")
                return
            reconnect_budget[0] -= 1
            result.reconnects += 1
            try:
                conn, done = await _connect(run, host, port)
            except (OSError, TimeoutError) as exc:
                run.error(f"reconnect failed: {exc!r}")
                await asyncio.sleep(0.01)
                continue
            conn.start()

    cpu0 = time.process_time()
    start = time.perf_counter()
    run.deadline = start + duration_s
    run.last_done = start
    for conn, _ in conns:
        conn.start()
    tasks = [asyncio.ensure_future(drive(c, d)) for c, d in conns]
    _, pending = await asyncio.wait(tasks, timeout=duration_s + DRAIN_GRACE_S)
    for t in pending:
        t.cancel()
    for t in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    cpu = time.process_time() - cpu0
    for conn in run.conns:
        conn.abort()

    elapsed = max(run.last_done - start, 1e-9)
    result.completed = run.completed
    result.ok = run.ok
    result.errors = run.errors
    result.statuses = dict(sorted(run.statuses.items()))
    result.elapsed_s = elapsed
    result.requests_per_s = run.ok / elapsed
    result.latency_ms = percentiles(run.latencies)
    result.events = run.events
    result.events_per_s = run.events / elapsed
    result.ttft_ms = percentiles(run.ttfts)
    result.event_counts = dict(sorted(run.event_counts.items()))
    result.event_names = dict(sorted(run.event_names.items()))
    result.incomplete_streams = run.incomplete
    result.stopped_by = run.stopped_by or "grace timeout"
    result.loadgen_cpu_s = cpu
    result.loadgen_cpu_util = cpu / elapsed
    result.error_samples = run.error_samples
    return result


def format_result(r: LoadResult) -> str:
    lines = [
        f"{r.mode} c={r.connections} {r.url}: {r.ok} ok / {r.completed} completed, {r.errors} errors "
        f"in {r.elapsed_s:.2f} s (stopped by {r.stopped_by}), loadgen CPU {r.loadgen_cpu_util:.0%}",
        f"  requests/s {r.requests_per_s:,.0f}   latency ms "
        + " ".join(f"{k} {v:.3f}" for k, v in r.latency_ms.items()),
    ]
    if r.mode == "sse":
        lines.append(
            f"  events/s {r.events_per_s:,.0f} ({r.events} events)   TTFT ms "
            + " ".join(f"{k} {v:.3f}" for k, v in r.ttft_ms.items())
        )
    if r.error_samples:
        lines.append(f"  errors: {r.error_samples[:3]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n")[0])
    p.add_argument("url", help="http://127.0.0.1:PORT (path defaults to /v1/messages)")
    p.add_argument("--mode", choices=["json", "sse"], default="json")
    p.add_argument("-c", "--connections", type=int, default=1)
    p.add_argument("-n", "--requests", type=int, default=1000, help="at most this many requests")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="at most this many seconds")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--count-names", action="store_true", help="also count SSE events by name")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(
        run_load(
            args.url,
            cast(Mode, args.mode),
            args.connections,
            args.requests,
            args.duration,
            model=args.model,
            count_names=args.count_names,
        )
    )
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
