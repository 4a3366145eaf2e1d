"""The soak: steady mixed load for a long time, with every moving part on, watching for growth.

Load: ``WORKERS`` closed-loop clients, each pausing ``PAUSE_S`` between requests, over both doors
(HTTP and gRPC), JSON and streaming, through two routes: the built-in mock upstream, and an
Anthropic upstream (``fault_upstream.FaultUpstream`` with faults off, so the HTTP client pool and
relay run too). Admission is on (3 client keys, generous limits), metrics on, the request log on,
and OpenTelemetry tracing on and sampled (every request), exported over OTLP/gRPC to a collector
stub in this process (``otlp_stub``) that counts what it receives. The sidecar runs with
``SIDECAR_TRACEMALLOC=1``, so ``/metrics`` also carries its traced Python memory.

Every second: the sidecar's RSS (``/proc/<pid>/status`` VmRSS), its open fds (``/proc/<pid>/fd``),
``sidecar_event_loop_tasks``, ``sidecar_traced_memory_bytes`` and the number of series on
``/metrics`` (sample lines).

The rule (``judge``): the first half of the run is warm-up (allocators, caches, pools, the model
label set fill up there) and is not judged. The second half is split in quarters, and each
figure's median over its first quarter is compared with its median over its last quarter:

- RSS and traced memory: the last quarter's median may exceed the first's by less than 5 %
  (medians, so a GC pause or a burst of in-flight requests at one sample does not decide);
- fds, tasks and metric series: the last quarter's median may not exceed the first quarter's
  maximum (they fluctuate with the requests in flight at the sampling instant, but a leak of one
  per minute shows within the run); fds by at most ``FD_SLACK`` (2): the clients' and the
  upstream pool's keep-alive connections are opened again as they expire, so one more socket
  open at the end of a 60 s run is churn, while a leak keeps growing (a reduced CI run once
  ended with 32 against 31, another with 34 against 31). Every sample also records what the fds
  are (``fd_kinds``: TCP sockets by role and port, pipes, anon inodes, files), and an fd finding
  names what the end holds beyond the first quarter's peak.

After the load stops, the task count must come back to its idle value from before the load (as
in the storm), every request must have succeeded, spans must have arrived at the collector, and
nothing in the sidecar's log (its request log included), the exported spans or ``/metrics`` may
hold a key.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from grpc import aio as grpc_aio

from sidecar.grpc import convert
from sidecar.messages.v1 import messages_pb2_grpc as pb_grpc

from .fault_upstream import MODEL, FaultUpstream
from .otlp_stub import OtlpStub
from .sidecar_process import SECRETS, SidecarProcess

KEYS = [f"sk-client-soak-{i}" for i in range(3)]
ALL_SECRETS = (*SECRETS, *KEYS)
WORKERS = 6
PAUSE_S = 0.05  # each worker's pause between requests: a steady load, not a stress test
GROWTH_LIMIT = 0.05  # RSS and traced memory: last-quarter median vs first-quarter median

FD_SLACK = 2  # open sockets the last quarter may hold above the first (connection churn)


def config(url: str, otlp: str, admin_port: int, http_port: int, grpc_port: int) -> str:
    keys = "\n".join(
        f"    - {{name: soak-{i}, sha256: {hashlib.sha256(k.encode()).hexdigest()}, tier: t}}"
        for i, k in enumerate(KEYS)
    )
    return f"""
listeners: {{http: {{port: {http_port}}}, grpc: {{port: {grpc_port}}}}}
admin: {{port: {admin_port}}}
upstreams:
  a: {{provider: anthropic, base_url: "{url}", api_key: sk-fault-a, pacing: {{enabled: false}}}}
  m: {{provider: mock, words: 12}}
routes:
  - {{match: "{MODEL}", upstream: a}}
  - {{match: "*", upstream: m}}
admission:
  tiers:
    t: {{requests_per_minute: 1000000, tokens_per_minute: 1000000000, concurrency: 100}}
  keys:
{keys}
telemetry:
  request_log: true
  traces: {{endpoint: "{otlp}", service_name: soak}}
"""


_T = TypeVar("_T")


@dataclass
class Sample:
    t: float
    rss_kb: int
    fds: int
    tasks: float
    traced: float
    series: int
    # What the fds are (``fd_kinds``), so a growth names what grew.
    fd_kinds: Counter[str] = field(default_factory=Counter)


def _tcp_sockets(pid: int) -> dict[str, tuple[int, int, bool]]:
    """socket inode -> (local port, remote port, listening), from the process's /proc/net/tcp*."""
    found: dict[str, tuple[int, int, bool]] = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10:
                continue
            local, remote, state, inode = parts[1], parts[2], parts[3], parts[9]
            found[inode] = (
                int(local.rsplit(":", 1)[1], 16),
                int(remote.rsplit(":", 1)[1], 16),
                state == "0A",
            )
    return found


def fd_kinds(pid: int) -> Counter[str]:
    """The process's open fds by kind: TCP sockets by role and port (listening on, accepted on,
    connected to), other sockets, pipes, anon inodes (epoll, eventfd ...), files."""
    kinds: Counter[str] = Counter()
    sockets: dict[str, tuple[int, int, bool]] | None = None
    targets: list[str] = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile
            continue
    listening: set[int] = set()
    if any(t.startswith("socket:[") for t in targets):
        sockets = _tcp_sockets(pid)
        listening = {local for local, _, listen in sockets.values() if listen}
    for target in targets:
        if target.startswith("socket:["):
            tcp = sockets.get(target[8:-1]) if sockets is not None else None
            if tcp is None:
                kinds["socket (not TCP)"] += 1
            elif tcp[2]:
                kinds[f"listening on :{tcp[0]}"] += 1
            elif tcp[0] in listening:
                kinds[f"accepted on :{tcp[0]}"] += 1
            else:
                kinds[f"connected to :{tcp[1]}"] += 1
        elif target.startswith("pipe:"):
            kinds["pipe"] += 1
        elif target.startswith("anon_inode:"):
            kinds[target] += 1  # anon_inode:[eventpoll], [eventfd], ...
        else:
            kinds["file"] += 1
    return kinds


def _status_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def series_and_gauges(text: str) -> tuple[int, dict[str, float]]:
    """The number of sample lines in a /metrics text, and the unlabelled gauges' values."""
    series = 0
    gauges: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series += 1
        name, _, value = line.rpartition(" ")
        if "{" not in name:
            gauges[name] = float(value)
    return series, gauges


def _quarters(values: Sequence[_T]) -> tuple[list[_T], list[_T]]:
    """The first and last quarter of the second half of ``values``."""
    half = list(values[len(values) // 2 :])
    q = max(1, len(half) // 4)
    return half[:q], half[-q:]


def judge(samples: Sequence[Sample]) -> tuple[dict[str, str], list[str]]:
    """(figures per measure, violations) by the rule in the module docstring."""
    figures: dict[str, str] = {}
    violations: list[str] = []
    if len(samples) < 8:
        return figures, [f"only {len(samples)} samples: too short a run to judge"]
    for name, unit in (("rss_kb", "KB"), ("traced", "B")):
        first, last = _quarters([float(getattr(s, name)) for s in samples])
        a, b = statistics.median(first), statistics.median(last)
        growth = (b - a) / a if a else 0.0
        figures[name] = f"{a:,.0f} -> {b:,.0f} {unit} ({growth:+.1%})"
        if growth >= GROWTH_LIMIT:
            violations.append(f"{name} grew {growth:.1%} over the second half ({a:,.0f} -> {b:,.0f} {unit})")
    for name in ("fds", "tasks", "series"):
        first, last = _quarters([float(getattr(s, name)) for s in samples])
        top, b = max(first), statistics.median(last)
        figures[name] = f"first-quarter max {top:g}, last-quarter median {b:g}"
        if b > top + (FD_SLACK if name == "fds" else 0):
            violation = f"{name} grew over the second half (max {top:g} early, median {b:g} late)"
            if name == "fds":
                violation += _fds_grown(samples, top)
            violations.append(violation)
    return figures, violations


def _fds_grown(samples: Sequence[Sample], top: float) -> str:
    """What the last sample holds beyond the first-quarter sample with the most fds."""
    first, _ = _quarters(samples)
    early = next(s for s in first if s.fds == top).fd_kinds
    late = samples[-1].fd_kinds
    more = late - early
    if not more:
        return ""
    return "; more at the end than at that maximum: " + ", ".join(
        f"{k} +{n}" for k, n in sorted(more.items())
    )


def secrets_in(what: str, data: bytes | str, secrets: Sequence[str] = ALL_SECRETS) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    return [f"the secret {s!r} appears in {what}" for s in secrets if s.encode() in raw]


@dataclass
class Load:
    done: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    error_bodies: list[bytes] = field(default_factory=list)


def _body(rng: random.Random, i: int, stream: bool) -> dict[str, Any]:
    model = MODEL if rng.random() < 0.5 else rng.choice(("claude-soak-1", "claude-soak-2"))
    return {
        "model": model,
        "max_tokens": 32,
        "stream": stream,
        "metadata": {"user_id": f"soak-{i % 500}"},  # the fake's answer depends on it: 500 kinds
        "messages": [{"role": "user", "content": "soak " + "y" * rng.choice((10, 500, 5_000))}],
    }


async def _one(client: httpx.AsyncClient, stub: Any, load: Load, rng: random.Random, i: int) -> None:
    door = "http" if rng.random() < 0.5 else "grpc"
    stream = rng.random() < 0.5
    body = _body(rng, i, stream)
    key = rng.choice(KEYS)
    what = f"{door} {'stream' if stream else 'json'}"
    if door == "http":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        async with client.stream("POST", "/v1/messages", json=body, headers=headers) as r:
            raw = await r.aread()
        if r.status_code != 200 or (stream and b"message_stop" not in raw):
            load.failures[f"{what} {r.status_code}"] += 1
            load.error_bodies.append(raw)
            return
    else:
        request = convert.request_to_proto(body)
        md = (("x-api-key", key),)
        try:
            if stream:
                events = [e async for e in stub.StreamMessage(request, metadata=md, timeout=30)]
                if not events or events[-1].WhichOneof("event") != "message_stop":
                    load.failures[f"{what} unfinished"] += 1
                    return
            else:
                await stub.CreateMessage(request, metadata=md, timeout=30)
        except grpc_aio.AioRpcError as exc:
            load.failures[f"{what} {exc.code().name}"] += 1
            load.error_bodies.append(str(exc.trailing_metadata()).encode())
            return
    load.done[what] += 1


async def _metrics(client: httpx.AsyncClient) -> str:
    return (await client.get("/metrics")).text


async def run(seconds: float, seed: int = 7) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    fake = FaultUpstream(fault_rate=0.0, seed=seed)
    url = await fake.start()
    collector = OtlpStub()
    otlp = await collector.start()
    load = Load()
    samples: list[Sample] = []
    violations: list[str] = []
    os.environ["SIDECAR_TRACEMALLOC"] = "1"  # inherited by the sidecar's process
    os.environ.setdefault("OTEL_BSP_SCHEDULE_DELAY", "1000")
    try:
        sidecar = SidecarProcess(lambda a, h, g: config(url, otlp, a, h, g))
        await sidecar.__aenter__()
    finally:
        os.environ.pop("SIDECAR_TRACEMALLOC", None)
    try:
        assert sidecar.proc is not None
        pid = sidecar.proc.pid
        channel = grpc_aio.insecure_channel(sidecar.grpc_target)
        stub = pb_grpc.MessagesStub(channel)
        async with (
            httpx.AsyncClient(base_url=sidecar.http_url, timeout=30) as client,
            httpx.AsyncClient(base_url=sidecar.admin_url, timeout=10) as admin,
        ):
            await _one(client, stub, load, rng, 0)
            await asyncio.sleep(0.5)
            _, gauges = series_and_gauges(await _metrics(admin))
            idle_tasks = gauges.get("sidecar_event_loop_tasks", -1.0)
            started = time.monotonic()
            cpu0 = sidecar.cpu_seconds()
            stop = asyncio.Event()
            counter = iter(range(1, 10**9))

            async def worker(w: int) -> None:
                wrng = random.Random(rng.getrandbits(64))
                while not stop.is_set():
                    try:
                        await _one(client, stub, load, wrng, next(counter))
                    except Exception as exc:  # a client-side failure is a finding too
                        load.failures[f"client {type(exc).__name__}"] += 1
                    await asyncio.sleep(PAUSE_S * (0.5 + wrng.random()))

            async def sampler() -> None:
                next_at = time.monotonic()
                while not stop.is_set():
                    text = await _metrics(admin)
                    series, gauges = series_and_gauges(text)
                    samples.append(
                        Sample(
                            time.monotonic() - started,
                            _status_rss_kb(pid),
                            len(os.listdir(f"/proc/{pid}/fd")),
                            gauges.get("sidecar_event_loop_tasks", -1.0),
                            gauges.get("sidecar_traced_memory_bytes", -1.0),
                            series,
                            fd_kinds(pid),
                        )
                    )
                    next_at += 1.0
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))

            tasks = [asyncio.create_task(worker(w)) for w in range(WORKERS)]
            sampling = asyncio.create_task(sampler())
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks, sampling)
            elapsed = time.monotonic() - started
            cpu = sidecar.cpu_seconds() - cpu0
            # Settle: the task count back to idle.
            tasks_after = -1.0
            for _ in range(100):
                _, gauges = series_and_gauges(await _metrics(admin))
                tasks_after = gauges.get("sidecar_event_loop_tasks", -1.0)
                if tasks_after == idle_tasks:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(2.5)  # the last spans' batch (OTEL_BSP_SCHEDULE_DELAY 1 s)
            metrics_text = await _metrics(admin)
        await channel.close(None)
    finally:
        await sidecar.__aexit__(None, None, None)
        await collector.close()
        await fake.close()
    violations += sidecar.log_problems()
    log = sidecar.log.read_bytes()
    violations += secrets_in("the sidecar's log (request log included)", log)
    violations += secrets_in("the exported spans", b"".join(collector.kept))
    violations += secrets_in("/metrics", metrics_text)
    violations += secrets_in("error answers", b"".join(load.error_bodies))
    figures, growth = judge(samples)
    violations += growth
    if tasks_after != idle_tasks:
        violations.append(f"tasks {tasks_after:g} after the load, {idle_tasks:g} before it")
    if load.failures:
        violations.append(f"requests failed: {dict(load.failures.most_common(5))}")
    if not collector.spans:
        violations.append("no span reached the OTLP collector")
    request_lines = log.count(b'"request_id"')
    total = sum(load.done.values())
    if request_lines < total:
        violations.append(f"the request log has {request_lines} lines for {total} requests")
    report = [
        f"soak: {elapsed:.0f} s, {total} requests ({total / elapsed:.0f}/s; "
        + ", ".join(f"{k} {v}" for k, v in sorted(load.done.items()))
        + f"), {WORKERS} clients, sidecar CPU {cpu:.0f} s ({cpu / elapsed:.0%}), {len(samples)} samples",
        f"  second half, first vs last quarter: RSS {figures.get('rss_kb')}; traced {figures.get('traced')}",
        f"  fds {figures.get('fds')}; tasks {figures.get('tasks')}; metric series {figures.get('series')}",
        f"  tasks idle {idle_tasks:g} before, {tasks_after:g} after; OTLP exports {collector.requests}, "
        f"spans {collector.spans} ({', '.join(f'{k} {v}' for k, v in collector.span_names.most_common(4))}); "
        f"request log lines {request_lines}",
        f"  violations {len(violations)}",
    ]
    return report, violations
