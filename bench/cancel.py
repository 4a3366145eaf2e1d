"""Cancellation latency: how long after a client goes away the upstream sees its request closed.

One probe: the client sends a request the fake upstream will not finish (``bench/fake_upstream.py``,
model ``bench-hang-before`` or ``bench-hang-after``, probe id in ``metadata.user_id``), waits (for
``before``: a fixed 50 ms, the upstream having answered nothing; for ``after``: until the first
``content_block_delta`` has arrived), reads ``time.monotonic()`` and closes its socket (HTTP) or
cancels its call (gRPC, ``bench/grpc_loadgen.py``). The upstream records ``time.monotonic()`` when it
sees that request's connection close, and ``GET /_bench/closes?id=...`` hands the record over. Both
readings are ``CLOCK_MONOTONIC`` (what ``time.monotonic()`` is on Linux), one clock for every process
on the machine, so ``upstream close - client close`` is the time the proxy took to close upstream.

Probes run one after the other (the next starts once the previous close was recorded, or after
``CLOSE_WAIT_S``). Sent straight to the fake upstream the figure is the loopback floor (a few tens of
microseconds); the bench reports it through the sidecar only, where a direct baseline is 0 by
definition.

Run alone: ``python -m bench.cancel http://127.0.0.1:PORT --kind after -n 10``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Literal, cast
from urllib.parse import urlsplit

from bench.fake_upstream import HANG_AFTER_MODEL, HANG_BEFORE_MODEL, install_uvloop
from bench.loadgen import CLIENT_KEY, percentiles

CancelKind = Literal["before", "after", "deadline"]
KINDS: tuple[CancelKind, ...] = ("before", "after", "deadline")
BEFORE_WAIT_S = 0.05  # "before first byte": how long the client waits before it gives up
CLOSE_WAIT_S = 2.0  # how long the upstream's close is waited for, per probe
FIRST_DELTA_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
MAX_PROBES = 10_000


class ProbeError(Exception):
    """A probe that could not be run as intended (not a slow close: a broken one)."""


def hang_body(kind: CancelKind, probe_id: str) -> dict[str, object]:
    """The request body of one probe: ``after`` streams, ``before`` and ``deadline`` do not."""
    body: dict[str, object] = {
        "model": HANG_AFTER_MODEL if kind == "after" else HANG_BEFORE_MODEL,
        "max_tokens": 1024,
        "metadata": {"user_id": probe_id},
        "messages": [{"role": "user", "content": "Hello, Claude. This request will be cancelled."}],
    }
    if kind == "after":
        body["stream"] = True
    return body


def _hostport(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"need http://host:port[/path], got {url!r}")
    return parts.hostname, parts.port, parts.path


async def wait_close(upstream_url: str, probe_id: str, timeout_s: float = CLOSE_WAIT_S) -> dict[str, object]:
    """The upstream's record for ``probe_id``, once it saw the close or after ``timeout_s``."""
    host, port, _ = _hostport(upstream_url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
    try:
        writer.write(
            f"GET /_bench/closes?id={probe_id}&wait_ms={timeout_s * 1000:.0f} HTTP/1.1\r\n"
            f"host: {host}:{port}\r\n\r\n".encode()
        )
        raw = await asyncio.wait_for(reader.read(), timeout_s + CONNECT_TIMEOUT_S)  # connection: close
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ProbeError(f"GET /_bench/closes answered {head[:40]!r}")
    record = json.loads(body)
    if not isinstance(record, dict):
        raise ProbeError(f"GET /_bench/closes answered {body[:80]!r}")
    return record


async def http_probe(url: str, kind: CancelKind, probe_id: str) -> float:
    """One HTTP probe; returns the client's ``time.monotonic()`` just before it closed its socket."""
    if kind == "deadline":
        raise ValueError("HTTP has no deadline; use before or after")
    host, port, path = _hostport(url)
    body = json.dumps(hang_body(kind, probe_id), separators=(",", ":")).encode()
    request = (
        f"POST {path if path not in ('', '/') else '/v1/messages'} HTTP/1.1\r\n"
        f"host: {host}:{port}\r\n"
        f"x-api-key: {CLIENT_KEY}\r\n"
        "anthropic-version: 2023-06-01\r\n"
        "content-type: application/json\r\n"
        f"accept: {'text/event-stream' if kind == 'after' else 'application/json'}\r\n"
        "user-agent: messages-sidecar-bench/0.1\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
    try:
        writer.write(request)
        if kind == "before":
            try:  # nothing may arrive while the client waits
                early = await asyncio.wait_for(reader.read(65536), BEFORE_WAIT_S)
            except TimeoutError:
                early = None
            if early is not None:
                raise ProbeError(f"answered before the client gave up: {early[:60]!r}")
        else:
            got = b""
            deadline = time.monotonic() + FIRST_DELTA_TIMEOUT_S
            for _ in range(10_000):  # bounded: ends at the first delta, EOF or the deadline
                chunk = await asyncio.wait_for(reader.read(65536), max(0.001, deadline - time.monotonic()))
                if not chunk:
                    raise ProbeError(f"connection closed before the first delta: {got[:120]!r}")
                got += chunk
                if b"event: content_block_delta" in got or b"event:content_block_delta" in got:
                    break
            else:
                raise ProbeError("no content_block_delta")
            if not got.startswith(b"HTTP/1.1 200"):
                raise ProbeError(f"answered {got[:60]!r}")
        t_client = time.monotonic()
        writer.close()
        return t_client
    finally:
        writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await writer.wait_closed()


@dataclass
class CancelResult:
    """Close latencies (upstream close - client close) in milliseconds."""

    door: str  # "http" or "grpc"
    kind: str  # "before", "after" or "deadline"
    target: str
    probes: int = 0
    closed: int = 0  # probes whose close the upstream recorded within CLOSE_WAIT_S
    missing: int = 0  # probes the upstream saw but did not see close within CLOSE_WAIT_S
    errors: int = 0  # probes that could not run as intended
    negative: int = 0  # closes recorded before the client closed (the proxy gave up on its own)
    close_ms: dict[str, float] = field(default_factory=dict)  # p50/p90/p99/max/mean
    samples_ms: list[float] = field(default_factory=list)
    how: dict[str, int] = field(default_factory=dict)  # "eof" (FIN), "lost", "reset"
    # Probes that report when the client itself saw its call end (gRPC deadline: DEADLINE_EXCEEDED),
    # relative to the client's reference time.
    client_end_ms: dict[str, float] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


async def run_probes(
    door: str,
    kind: CancelKind,
    target: str,
    upstream_url: str,
    n: int,
    probe: Callable[[str], Awaitable[float | tuple[float, float]]],
    tag: str | None = None,
) -> CancelResult:
    """``n`` probes one after the other.

    ``probe(id)`` returns the client's close time, or (close time, when the client saw its call end).
    """
    if not 1 <= n <= MAX_PROBES:
        raise ValueError(f"n must be in 1..{MAX_PROBES}")
    tag = tag or secrets.token_hex(4)
    res = CancelResult(door=door, kind=kind, target=target)
    t_start = time.monotonic()
    client_end: list[float] = []

    def error(what: str) -> None:
        res.errors += 1
        if len(res.error_samples) < 10:
            res.error_samples.append(what)

    for i in range(n):
        probe_id = f"{tag}-{door}-{kind}-{i}"
        res.probes += 1
        try:
            got = await probe(probe_id)
        except (ProbeError, OSError, TimeoutError) as exc:
            error(f"{type(exc).__name__}: {exc}")
            continue
        if isinstance(got, tuple):
            t_client = got[0]
            client_end.append((got[1] - got[0]) * 1000.0)
        else:
            t_client = got
        try:
            rec = await wait_close(upstream_url, probe_id)
        except (ProbeError, OSError, TimeoutError, ValueError) as exc:
            error(f"close record: {type(exc).__name__}: {exc}")
            continue
        closed = rec.get("closed")
        if rec.get("seen") is None:
            error("the upstream never saw the request")
        elif not isinstance(closed, float | int):
            res.missing += 1
        else:
            ms = (float(closed) - t_client) * 1000.0
            res.closed += 1
            res.samples_ms.append(ms)
            res.negative += ms < 0
            how = str(rec.get("how"))
            res.how[how] = res.how.get(how, 0) + 1
    res.close_ms = percentiles(res.samples_ms)
    res.client_end_ms = percentiles(client_end)
    res.elapsed_s = time.monotonic() - t_start
    return res


async def run_http_probes(
    url: str, kind: CancelKind, n: int, upstream_url: str | None = None, tag: str | None = None
) -> CancelResult:
    """``n`` HTTP probes against ``url`` (the sidecar, or the fake upstream itself)."""
    return await run_probes(
        "http", kind, url, upstream_url or url, n, lambda pid: http_probe(url, kind, pid), tag
    )


def format_result(r: CancelResult) -> str:
    pct = " ".join(f"{k} {v:.3f}" for k, v in r.close_ms.items())
    line = (
        f"{r.door} {r.kind} {r.target}: {r.closed}/{r.probes} closes recorded, {r.missing} missing, "
        f"{r.errors} errors; close latency ms {pct or 'n/a'}"
    )
    return line + (f"\n  errors: {r.error_samples[:3]}" if r.error_samples else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cancel", description=__doc__.split("\n")[0])
    p.add_argument("url", help="http://127.0.0.1:PORT: the sidecar's HTTP door or the fake upstream")
    p.add_argument("--upstream", help="the fake upstream's http://127.0.0.1:PORT (default: url)")
    p.add_argument("--kind", choices=["before", "after"], default="after")
    p.add_argument("-n", "--probes", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    install_uvloop()
    result = asyncio.run(run_http_probes(args.url, cast(CancelKind, args.kind), args.probes, args.upstream))
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
