"""A gRPC load generator for the sidecar's gRPC door (``grpc.aio``, the stubs generated in the repo).

Modes, on one channel (one HTTP/2 connection) with ``connections`` calls in flight:

- ``unary``: ``CreateMessage``; measures requests/s and latency percentiles.
- ``stream``: ``StreamMessage``; counts ``StreamEvent`` messages (one per SSE event, ``ping``
  included, so the count matches the HTTP load generator's) for events/s, and the time from starting
  the call to the first ``content_block_delta`` event (time to first token).

The result is a ``bench.loadgen.LoadResult``; ``statuses`` holds gRPC status codes (0 = OK).

It also runs the gRPC cancellation probes of ``bench/cancel.py``: ``before`` (``CreateMessage``
cancelled 50 ms after it started), ``deadline`` (``CreateMessage`` with a 50 ms deadline; the client
reference time is the deadline itself) and ``after`` (``StreamMessage`` cancelled once the first
``content_block_delta`` arrived).

``python -m bench`` runs it as a worker process (``--serve``: one JSON command per stdin line, one
``result SEQ {json}`` line per command on stdout), pinned like the HTTP load generator. Run alone:
``python -m bench.grpc_loadgen 127.0.0.1:PORT --mode stream -c 8 -n 1000 -d 5``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, cast

import grpc
from grpc import aio as grpc_aio

from bench.cancel import (
    BEFORE_WAIT_S,
    FIRST_DELTA_TIMEOUT_S,
    KINDS,
    CancelKind,
    CancelResult,
    ProbeError,
    hang_body,
    run_probes,
)
from bench.loadgen import DEFAULT_MODEL, LoadResult, percentiles, request_body
from sidecar.grpc import convert
from sidecar.messages.v1 import messages_pb2 as pb
from sidecar.messages.v1 import messages_pb2_grpc as pb_grpc

GrpcMode = Literal["unary", "stream"]
METADATA = (("x-api-key", "bench"), ("anthropic-version", "2023-06-01"))
DELTA = "content_block_delta"  # the StreamEvent oneof ("event") case of a content delta
CONNECT_TIMEOUT_S = 5.0
CALL_TIMEOUT_S = 30.0
DRAIN_GRACE_S = 10.0
MAX_CONNECTIONS = 1024
MAX_COMMANDS = 100_000
READY_LINE = "grpc loadgen ready"


def build_request(mode: GrpcMode, model: str = DEFAULT_MODEL) -> pb.CreateMessageRequest:
    """The HTTP load generator's request body, as a proto (``stream`` set for ``stream``)."""
    body = json.loads(request_body("sse" if mode == "stream" else "json", model))
    return convert.request_to_proto(body)


def build_probe_request(kind: CancelKind, probe_id: str) -> pb.CreateMessageRequest:
    return convert.request_to_proto(hang_body(kind, probe_id))


async def _open(target: str) -> tuple[grpc_aio.Channel, Any]:
    channel = grpc_aio.insecure_channel(target)
    try:
        await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT_S)
    except BaseException:
        await channel.close(grace=None)
        raise
    return channel, pb_grpc.MessagesStub(channel)


async def run_grpc_load(
    target: str,
    mode: GrpcMode = "unary",
    connections: int = 1,
    max_requests: int = 1000,
    duration_s: float = 5.0,
    *,
    count_names: bool = False,
) -> LoadResult:
    """Like ``bench.loadgen.run_load``: calls back to back until ``max_requests`` or ``duration_s``."""
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(f"connections must be in 1..{MAX_CONNECTIONS}")
    result = LoadResult(
        mode="sse" if mode == "stream" else "json",
        url=f"grpc://{target}",
        connections=connections,
        max_requests=max_requests,
        duration_limit_s=duration_s,
    )
    request = build_request(mode)
    remaining = [max_requests]
    latencies: list[float] = []
    ttfts: list[float] = []
    event_counts: dict[int, int] = {}
    event_names: dict[str, int] = {}
    stopped_by = [""]
    last_done = [0.0]
    deadline = [float("inf")]

    def error(what: str) -> None:
        result.errors += 1
        if len(result.error_samples) < 10:
            result.error_samples.append(what)

    def take() -> bool:
        if remaining[0] <= 0:
            stopped_by[0] = stopped_by[0] or "requests"
            return False
        if time.perf_counter() >= deadline[0]:
            stopped_by[0] = stopped_by[0] or "duration"
            return False
        remaining[0] -= 1
        return True

    def status(code: int) -> None:
        result.statuses[code] = result.statuses.get(code, 0) + 1

    channel, stub = await _open(target)
    try:

        async def unary() -> None:
            for _ in range(max_requests + 1):  # bounded: take() ends it
                if not take():
                    return
                t0 = time.perf_counter()
                try:
                    await stub.CreateMessage(request, metadata=METADATA, timeout=CALL_TIMEOUT_S)
                except grpc_aio.AioRpcError as exc:
                    result.completed += 1
                    status(exc.code().value[0])
                    error(f"{exc.code().name}: {exc.details()}")
                    continue
                now = time.perf_counter()
                result.completed += 1
                result.ok += 1
                status(0)
                latencies.append((now - t0) * 1000.0)
                last_done[0] = now

        async def stream() -> None:
            for _ in range(max_requests + 1):  # bounded: take() ends it
                if not take():
                    return
                t0 = time.perf_counter()
                call = stub.StreamMessage(request, metadata=METADATA, timeout=CALL_TIMEOUT_S)
                n = 0
                got_delta = False
                last: Any = None
                try:
                    async for ev in call:  # bounded by the stream (and CALL_TIMEOUT_S)
                        n += 1
                        last = ev
                        if not got_delta and ev.WhichOneof("event") == DELTA:
                            got_delta = True
                            ttfts.append((time.perf_counter() - t0) * 1000.0)
                        if count_names:
                            name = str(ev.WhichOneof("event"))
                            event_names[name] = event_names.get(name, 0) + 1
                except grpc_aio.AioRpcError as exc:
                    result.completed += 1
                    status(exc.code().value[0])
                    error(f"{exc.code().name}: {exc.details()}")
                    continue
                now = time.perf_counter()
                result.completed += 1
                status(0)
                event_counts[n] = event_counts.get(n, 0) + 1
                if last is None or last.WhichOneof("event") != "message_stop":
                    result.incomplete_streams += 1
                    error(f"stream did not end with message_stop ({n} events)")
                    continue
                result.ok += 1
                result.events += n
                latencies.append((now - t0) * 1000.0)
                last_done[0] = now

        cpu0 = time.process_time()
        start = time.perf_counter()
        deadline[0] = start + duration_s
        last_done[0] = start
        one = unary if mode == "unary" else stream
        tasks = [asyncio.ensure_future(one()) for _ in range(connections)]
        _, pending = await asyncio.wait(tasks, timeout=duration_s + DRAIN_GRACE_S)
        for t in pending:
            t.cancel()
        for t in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if pending:
            error(f"{len(pending)} calls still in flight at the end of the grace period")
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                error(f"worker failed: {t.exception()!r}")
        cpu = time.process_time() - cpu0
    finally:
        await channel.close(grace=None)

    elapsed = max(last_done[0] - start, 1e-9)
    result.statuses = dict(sorted(result.statuses.items()))
    result.elapsed_s = elapsed
    result.requests_per_s = result.ok / elapsed
    result.latency_ms = percentiles(latencies)
    result.events_per_s = result.events / elapsed
    result.ttft_ms = percentiles(ttfts)
    result.event_counts = dict(sorted(event_counts.items()))
    result.event_names = dict(sorted(event_names.items()))
    result.stopped_by = stopped_by[0] or "grace timeout"
    result.loadgen_cpu_s = cpu
    result.loadgen_cpu_util = cpu / elapsed
    return result


# -- cancellation probes ---------------------------------------------------------------------------
async def grpc_probe(stub: Any, kind: CancelKind, probe_id: str) -> float | tuple[float, float]:
    """One probe; returns the client's ``time.monotonic()`` when it cancelled.

    For ``deadline``: (the deadline, when the client got DEADLINE_EXCEEDED).
    """
    request = build_probe_request(kind, probe_id)
    if kind == "deadline":
        t0 = time.monotonic()
        try:
            await stub.CreateMessage(request, metadata=METADATA, timeout=BEFORE_WAIT_S)
        except grpc_aio.AioRpcError as exc:
            t_end = time.monotonic()
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ProbeError(f"{exc.code().name}: {exc.details()}") from None
            return t0 + BEFORE_WAIT_S, t_end  # the deadline the client set (it starts counting in the call)
        raise ProbeError("the call succeeded (the upstream should not have answered)")
    if kind == "before":
        call = stub.CreateMessage(request, metadata=METADATA, timeout=CALL_TIMEOUT_S)
        await asyncio.sleep(BEFORE_WAIT_S)
        if call.done():
            raise ProbeError(f"the call ended before the client gave up: {await call.code()}")
        t_client = time.monotonic()
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc_aio.AioRpcError):
            await call
        return t_client
    call = stub.StreamMessage(request, metadata=METADATA, timeout=CALL_TIMEOUT_S)
    try:

        async def first_delta() -> None:
            async for ev in call:  # bounded by FIRST_DELTA_TIMEOUT_S
                if ev.WhichOneof("event") == DELTA:
                    return
            raise ProbeError("the stream ended before the first delta")

        await asyncio.wait_for(first_delta(), FIRST_DELTA_TIMEOUT_S)
    except grpc_aio.AioRpcError as exc:
        raise ProbeError(f"{exc.code().name}: {exc.details()}") from None
    except TimeoutError:
        call.cancel()
        raise ProbeError("no content_block_delta in time") from None
    t_client = time.monotonic()
    call.cancel()
    return t_client


async def run_grpc_probes(
    target: str, upstream_url: str, kind: CancelKind, n: int, tag: str | None = None
) -> CancelResult:
    channel, stub = await _open(target)
    try:
        return await run_probes(
            "grpc", kind, target, upstream_url, n, lambda pid: grpc_probe(stub, kind, pid), tag
        )
    finally:
        await channel.close(grace=None)


# -- worker ----------------------------------------------------------------------------------------
async def _without_gc(run: Callable[[], Awaitable[LoadResult]]) -> LoadResult:
    gc.collect()
    gc.disable()
    try:
        return await run()
    finally:
        gc.enable()


async def run_command(cmd: dict[str, Any]) -> dict[str, object]:
    """One worker command: ``ping``, ``load`` or ``cancel``."""
    op = cmd.get("op")
    if op == "ping":
        return {"pong": True}
    if op == "load":
        mode = cast(GrpcMode, cmd["mode"])
        if mode not in ("unary", "stream"):
            raise ValueError(f"mode: {mode!r}")
        result = await _without_gc(
            lambda: run_grpc_load(
                str(cmd["target"]),
                mode,
                int(cmd["connections"]),
                int(cmd["requests"]),
                float(cmd["duration"]),
                count_names=bool(cmd.get("count_names")),
            )
        )
        return result.to_dict()
    if op == "cancel":
        kind = cast(CancelKind, cmd["kind"])
        if kind not in KINDS:
            raise ValueError(f"kind: {kind!r}")
        res = await run_grpc_probes(str(cmd["target"]), str(cmd["upstream"]), kind, int(cmd["n"]))
        return res.to_dict()
    raise ValueError(f"unknown op {op!r}")


async def serve() -> None:
    """Answer commands from stdin until EOF (the parent closing the pipe, or dying)."""
    loop = asyncio.get_running_loop()
    print(READY_LINE, flush=True)
    for _ in range(MAX_COMMANDS):  # bounded
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if not line.strip():
            continue
        seq: object = None
        try:
            cmd = json.loads(line)
            seq = cmd.get("seq")
            out = await run_command(cmd)
        except Exception as exc:  # reported to the parent, which decides
            out = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"result {seq} {json.dumps(out, separators=(',', ':'))}", flush=True)


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.grpc_loadgen", description=__doc__.split("\n")[0])
    p.add_argument("target", nargs="?", help="host:port of the sidecar's gRPC door")
    p.add_argument("--serve", action="store_true", help="worker mode: JSON commands on stdin")
    p.add_argument("--mode", choices=["unary", "stream"], default="unary")
    p.add_argument("-c", "--connections", type=int, default=1, help="calls in flight")
    p.add_argument("-n", "--requests", type=int, default=1000, help="at most this many calls")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="at most this many seconds")
    p.add_argument("--cancel", choices=list(KINDS), help="run cancellation probes instead of load")
    p.add_argument("--upstream", help="the fake upstream's http://host:port (with --cancel)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    _install_uvloop()
    if args.serve:
        asyncio.run(serve())
        return 0
    if not args.target:
        p.error("target is required (or --serve)")
    if args.cancel:
        if not args.upstream:
            p.error("--cancel needs --upstream")
        res = asyncio.run(run_grpc_probes(args.target, args.upstream, args.cancel, args.requests))
        print(json.dumps(res.to_dict(), indent=2))
        return 0
    result = asyncio.run(
        run_grpc_load(args.target, args.mode, args.connections, args.requests, args.duration)
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        from bench.loadgen import format_result

        print(format_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
