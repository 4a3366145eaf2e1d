"""Overload: offered load at 3x what the sidecar serves, then back down.

The sidecar serves the built-in mock with a fixed think time (``TTFT_MS``) behind an in-flight
limit (``listeners.http.max_in_flight``), so its capacity is known: about
``MAX_IN_FLIGHT / think time`` requests a second. Three phases, each an open loop (requests
arrive at a fixed rate whatever the answers do, as independent clients would), every request
on a connection of its own:

1. ``base``: half the capacity; every answer must be a 200.
2. ``over``: three times the capacity. The sidecar must shed what it cannot serve with 529
   ``overloaded_error`` (the Anthropic envelope) and a ``retry-after``, at once, rather than
   queue it: the requests it serves keep their latency (p99 of the last third of the phase no
   more than twice the base phase's p99 plus the think time), its RSS does not climb (the last
   third's peak within 15 % of the first third's), and ``/readyz`` stays 200 throughout (a
   native sidecar's readiness is its pod's: flipping it would take the app out of its Service).
3. ``after``: half the capacity again: every answer a 200 within the base phase's latency
   (p99 at most twice it), from the first second: recovery is immediate.

Anything else (a 5xx other than the 529, an error without the envelope, a 529 without
``retry-after``, a hang) is a violation, as are tracebacks or keys in the sidecar's log.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .sidecar_process import SidecarProcess

MAX_IN_FLIGHT = 32
TTFT_MS = 200.0  # the mock's think time per request
CAPACITY = MAX_IN_FLIGHT / (TTFT_MS / 1000.0)  # requests a second, at best
BODY = json.dumps(
    {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello"}]}
).encode()
TIMEOUT_S = 10.0


def config(admin_port: int, http_port: int, grpc_port: int) -> str:
    return f"""
listeners: {{http: {{port: {http_port}, max_in_flight: {MAX_IN_FLIGHT}}}, grpc: {{port: {grpc_port}}}}}
admin: {{port: {admin_port}}}
upstreams: {{m: {{provider: mock, ttft_ms: {TTFT_MS}, words: 8}}}}
routes: [{{match: "*", upstream: m}}]
"""


@dataclass
class Phase:
    name: str
    rate: float
    seconds: float
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (start offset, seconds) of 200s
    shed_latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def p99(self, part: slice = slice(None)) -> float:
        values = sorted(lat for _, lat in self.latencies[part])
        return values[min(len(values) - 1, int(len(values) * 0.99))] if values else 0.0


async def _one(port: int, phase: Phase, started: float) -> None:
    t0 = time.perf_counter()
    request = (
        b"POST /v1/messages HTTP/1.1\r\nhost: sidecar\r\ncontent-type: application/json\r\n"
        b"x-api-key: sk-overload\r\nanthropic-version: 2023-06-01\r\nconnection: close\r\n"
        b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
    )
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        phase.statuses["connect failed"] += 1
        phase.problems.append(f"connect: {exc!r}")
        return
    try:
        writer.write(request)
        data = await asyncio.wait_for(reader.read(), TIMEOUT_S)  # until the server closes
    except TimeoutError:
        phase.statuses["hang"] += 1
        phase.problems.append(f"no complete answer within {TIMEOUT_S:g} s")
        return
    except ConnectionError as exc:
        phase.statuses["reset"] += 1
        phase.problems.append(f"connection: {exc!r}")
        return
    finally:
        writer.transport.abort()
    took = time.perf_counter() - t0
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ")[1] if lines and len(lines[0].split(" ")) > 1 else "?"
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    phase.statuses[status] += 1
    if status == "200":
        phase.latencies.append((t0 - started, took))
        return
    try:
        envelope = json.loads(body)
        ok_envelope = envelope["type"] == "error" and isinstance(envelope["error"]["message"], str)
    except (ValueError, KeyError, TypeError):
        ok_envelope = False
    if (
        status == "529"
        and ok_envelope
        and envelope["error"]["type"] == "overloaded_error"
        and "retry-after" in headers
    ):
        phase.shed_latencies.append(took)
        return
    if len(phase.problems) < 10:
        phase.problems.append(f"HTTP {status} {headers.get('retry-after', '')!r}: {body[:160]!r}")


async def _ready_watch(admin: str, stop: asyncio.Event, flips: list[str]) -> None:
    host, port = admin.removeprefix("http://").split(":")
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /readyz HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            if not data.startswith(b"HTTP/1.1 200"):
                flips.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
        except (OSError, TimeoutError) as exc:
            flips.append(repr(exc))
        await asyncio.sleep(0.2)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _run_phase(port: int, phase: Phase, pid: int, rss: list[tuple[float, int]]) -> None:
    started = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()
    interval = 1.0 / phase.rate
    n = int(phase.rate * phase.seconds)
    for i in range(n):
        due = started + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_one(port, phase, started))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if i % max(int(phase.rate / 4), 1) == 0:
            rss.append((time.perf_counter() - started, _rss_kb(pid)))
    while tasks:
        await asyncio.sleep(0.05)
        rss.append((time.perf_counter() - started, _rss_kb(pid)))


async def run(seconds: float, seed: int = 0) -> tuple[list[str], list[str]]:
    violations: list[str] = []
    phases = [
        Phase("base", CAPACITY * 0.5, seconds / 3),
        Phase("over", CAPACITY * 3.0, seconds),
        Phase("after", CAPACITY * 0.5, seconds / 3),
    ]
    rss: dict[str, list[tuple[float, int]]] = {}
    flips: list[str] = []
    async with SidecarProcess(config) as sidecar:
        assert sidecar.proc is not None
        stop = asyncio.Event()
        watcher = asyncio.create_task(_ready_watch(sidecar.admin_url, stop, flips))
        for phase in phases:
            rss[phase.name] = []
            await _run_phase(sidecar.http_port, phase, sidecar.proc.pid, rss[phase.name])
        stop.set()
        await watcher
        violations += sidecar.log_problems()
    base, over, after = phases
    for phase in phases:
        violations += [f"{phase.name}: {p}" for p in phase.problems]
    if base.statuses.keys() - {"200"}:
        violations.append(f"base: not every answer was a 200: {dict(base.statuses)}")
    if not over.shed_latencies:
        violations.append("over: nothing was shed (no 529) at three times the capacity")
    third = max(len(over.latencies) // 3, 1)
    limit = 2 * base.p99() + TTFT_MS / 1000
    if over.p99(slice(-third, None)) > limit:
        violations.append(
            f"over: served p99 grew to {over.p99(slice(-third, None)) * 1000:.0f} ms (limit {limit * 1000:.0f} ms)"
        )
    samples = rss["over"]
    if samples:
        cut = len(samples) // 3
        first = max((kb for _, kb in samples[: max(cut, 1)]), default=0)
        last = max((kb for _, kb in samples[-max(cut, 1) :]), default=0)
        if first and last > first * 1.15:
            violations.append(f"over: RSS climbed from {first / 1024:.1f} to {last / 1024:.1f} MB")
    if after.statuses.keys() - {"200"}:
        violations.append(f"after: not every answer was a 200 once the load dropped: {dict(after.statuses)}")
    first_second = [lat for start, lat in after.latencies if start < 1.0]
    if first_second and max(first_second) > 2 * base.p99():
        violations.append(
            f"after: the first second's answers took up to {max(first_second) * 1000:.0f} ms (no immediate recovery)"
        )
    if flips:
        violations.append(f"/readyz was not 200 {len(flips)} times under load: {flips[:3]}")

    def fmt(p: Phase) -> str:
        served = len(p.latencies)
        lat = [x for _, x in p.latencies]
        med = statistics.median(lat) * 1000 if lat else 0
        shed = len(p.shed_latencies)
        shed_ms = statistics.median(p.shed_latencies) * 1000 if p.shed_latencies else 0
        return (
            f"  {p.name}: {p.rate:.0f} req/s offered for {p.seconds:.0f} s: {served} served "
            f"(p50 {med:.0f} ms, p99 {p.p99() * 1000:.0f} ms), {shed} shed with 529 "
            f"(p50 {shed_ms:.1f} ms); peak RSS {max((kb for _, kb in rss[p.name]), default=0) / 1024:.1f} MB"
        )

    report = [
        f"overload: in-flight limit {MAX_IN_FLIGHT}, think time {TTFT_MS:g} ms, capacity ~{CAPACITY:.0f} req/s; "
        f"/readyz polled every 0.2 s: {len(flips)} non-200",
        *(fmt(p) for p in phases),
        f"  violations {len(violations)}",
    ]
    return report, violations
