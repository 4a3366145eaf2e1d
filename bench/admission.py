"""The admission-overhead scenario of ``python -m bench``: what client-key admission costs per request.

Three sidecars, each ``python -m sidecar --config`` in front of the fake upstream with the same
upstream and route, started one at a time (alone, pinned to the proxy's CPU):

- ``off``: no ``admission:`` section (the client's ``x-api-key`` is not checked);
- ``memory``: ``admission:`` with the load generator's key (by sha256) in a tier with limits on every
  dimension but so high that nothing is refused (``LIMITS``), ``backend: {kind: memory}``;
- ``redis``: the same on ``backend: {kind: redis}``, a ``redis-server`` this scenario starts on a
  free loopback port (no persistence) pinned to the load generator's CPU, as a Redis on another host
  would not take the proxy's CPU. ``fail_open: false``: were Redis unreachable or slower than its
  timeout, requests would be refused and counted as errors, never silently admitted unchecked.

Per repetition: the direct runs (to the fake upstream, no sidecar: the run's baseline for context),
then each variant (alternating the order per repetition): a fresh start, a check (the gate answers
401 to a wrong key and sends the ``anthropic-ratelimit-*`` headers, or not when off; JSON and SSE go
through; the Redis variant talks to Redis), a warm-up at c=32, then JSON c=1 (p50 latency), JSON c=32
(requests/s) and SSE c=1 (p50 time to the first content delta). Reported: the figures per variant,
and against ``off`` of the same repetition: added ms at c=1, the requests/s ratio at c=32, and the
sidecar's CPU time per request (a steadier figure than throughput on a busy machine). For Redis, per
request: the limiter's script calls (round trips), the commands they ran, and Redis's time in them
(``INFO stats commandstats``). Nothing is asserted: no targets. ``--quick``: 0.8 s per run.

Processes are started through the caller's ``spawn`` (``bench.processes.Child``: own process group,
stdout drained, stderr to a log under ``bench/results``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hashlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

from bench.fake_upstream import sse_event_count
from bench.loadgen import CLIENT_KEY, LoadResult, Mode, request_body, run_load
from bench.processes import FOREIGN_LOAD_WARN
from bench.table import format_table

VariantKey = Literal["off", "memory", "redis"]
KEY_NAME = "bench-client"
# High enough that nothing is refused during a run: the numbers are the cost of checking.
LIMITS = {"requests_per_minute": 100_000_000, "tokens_per_minute": 10_000_000_000, "concurrency": 10_000}
REDIS_TIMEOUT_S = 1.0  # the limiter's per-call timeout; fail_open false, so a slower call is an error
REDIS_PREFIX = "bench:admission:"
QUICK_DURATION_S = 0.8  # per measurement with --quick (12 measurements per repetition)
STARTUP_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0
WRONG_KEY = "bench-wrong-key"
WARMUP_CONNECTIONS = 32


@dataclass(frozen=True)
class Variant:
    key: VariantKey
    label: str


VARIANTS = (
    Variant("off", "admission off"),
    Variant("memory", "admission, memory"),
    Variant("redis", "admission, redis"),
)


@dataclass(frozen=True)
class AdmScenario:
    key: str
    label: str
    mode: Mode
    connections: int
    metric: Literal["latency_p50_ms", "requests_per_s", "ttft_p50_ms"]
    kind: Literal["added_ms", "ratio"]

    def value(self, r: LoadResult) -> float | None:
        if self.metric == "requests_per_s":
            return r.requests_per_s if r.ok else None
        pcts = r.ttft_ms if self.metric == "ttft_p50_ms" else r.latency_ms
        return pcts.get("p50")


ADM_SCENARIOS = (
    AdmScenario("json_c1", "JSON c=1", "json", 1, "latency_p50_ms", "added_ms"),
    AdmScenario("json_c32", "JSON c=32", "json", 32, "requests_per_s", "ratio"),
    AdmScenario("sse_c1", "SSE c=1", "sse", 1, "ttft_p50_ms", "added_ms"),
)


class Proc(Protocol):
    """What this scenario needs of a started process (``bench.processes.Child``)."""

    proc: subprocess.Popen[bytes]

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float, what: str = ...) -> re.Match[str]: ...

    def cpu_seconds(self) -> float | None: ...

    def stop(self) -> None: ...


# name, argv, log file name (under bench/results), append to the log (a restart)
Spawn = Callable[[str, list[str], str, bool], Proc]


def admission_config(upstream_url: str, variant: VariantKey, redis_url: str | None = None) -> str:
    """The sidecar config (YAML) of one variant: every model to the fake upstream, plus admission."""
    text = (
        "upstreams:\n"
        f'  up: {{provider: anthropic, base_url: "{upstream_url}", api_key: bench-key}}\n'
        "routes:\n"
        '  - {match: "*", upstream: up}\n'
    )
    if variant == "off":
        return text
    if variant == "redis":
        if redis_url is None:
            raise ValueError("the redis variant needs redis_url")
        backend = (
            f'{{kind: redis, url: "{redis_url}", fail_open: false, timeout: {REDIS_TIMEOUT_S}, '
            f'key_prefix: "{REDIS_PREFIX}"}}'
        )
    else:
        backend = "{kind: memory}"
    limits = ", ".join(f"{k}: {v}" for k, v in LIMITS.items())
    return text + (
        "admission:\n"
        "  keys:\n"
        f"    - {{name: {KEY_NAME}, sha256: {hashlib.sha256(CLIENT_KEY.encode()).hexdigest()}, tier: bench}}\n"
        "  tiers:\n"
        f"    bench: {{{limits}}}\n"
        f"  backend: {backend}\n"
    )


def limits_desc() -> str:
    return ", ".join(f"{k} {v:,}" for k, v in LIMITS.items())


# -- one run and its bookkeeping ---------------------------------------------------------------------
@dataclass
class AdmRun:
    result: LoadResult
    proxy_cpu_s: float | None = None  # the sidecar's CPU time during the run (None: direct)
    redis_cpu_s: float | None = None
    redis: RedisCounts | None = None  # what Redis did during the run (redis variant)
    foreign_proxy_core: float | None = None  # other processes' CPU on the proxy's core, in cores

    def to_dict(self) -> dict[str, object]:
        return self.result.to_dict() | {
            "proxy_cpu_s": self.proxy_cpu_s,
            "redis_cpu_s": self.redis_cpu_s,
            "redis": dataclasses.asdict(self.redis) if self.redis is not None else None,
            "foreign_cpu_on_proxy_core": self.foreign_proxy_core,
        }

    def cpu_us_per_request(self) -> float | None:
        if self.proxy_cpu_s is None or not self.result.ok:
            return None
        return self.proxy_cpu_s / self.result.ok * 1e6


@dataclass
class AdmissionOutcome:
    variants: tuple[Variant, ...]
    # "direct" or a variant key -> scenario key -> one run per repetition
    runs: dict[str, dict[str, list[AdmRun]]] = field(default_factory=dict)

    def add(self, which: str, scenario: str, run: AdmRun) -> None:
        self.runs.setdefault(which, {}).setdefault(scenario, []).append(run)

    def rows(self) -> list[dict[str, object]]:
        off = self.runs.get("off", {})
        out: list[dict[str, object]] = []
        for which, label in [("direct", "direct (no proxy)"), *((v.key, v.label) for v in self.variants)]:
            mine = self.runs.get(which, {})
            scenarios: dict[str, object] = {}
            for s in ADM_SCENARIOS:
                runs = mine.get(s.key, [])
                base = off.get(s.key, [])
                vs_off: list[float] = []
                cpu_added: list[float] = []
                if which not in ("direct", "off"):
                    for o, r in zip(base, runs, strict=False):  # the same repetition
                        ov, rv = s.value(o.result), s.value(r.result)
                        if ov is not None and rv is not None and ov > 0:
                            vs_off.append(rv / ov if s.kind == "ratio" else rv - ov)
                        oc, rc = o.cpu_us_per_request(), r.cpu_us_per_request()
                        if oc is not None and rc is not None:
                            cpu_added.append(rc - oc)
                ok = sum(r.result.ok for r in runs)
                reds = [r.redis for r in runs if r.redis is not None]
                statuses: dict[str, int] = {}
                for r in runs:
                    for code, n in r.result.statuses.items():
                        statuses[str(code)] = statuses.get(str(code), 0) + n
                scenarios[s.key] = {
                    "label": s.label,
                    "metric": s.metric,
                    "kind": s.kind,
                    "value": _median([v for r in runs if (v := s.value(r.result)) is not None]),
                    "vs_off": _median(vs_off),  # ratio (c=32) or added ms (c=1)
                    "per_repetition_vs_off": vs_off,
                    "cpu_us_per_request": _median(
                        [v for r in runs if (v := r.cpu_us_per_request()) is not None]
                    ),
                    "added_cpu_us_per_request": _median(cpu_added),
                    # per client request: script calls (round trips), commands (the scripts' included),
                    # and Redis's own time in the scripts, us
                    "redis_calls_per_request": sum(x.scripts for x in reds) / ok if reds and ok else None,
                    "redis_commands_per_request": sum(x.commands for x in reds) / ok if reds and ok else None,
                    "redis_script_us_per_request": sum(x.script_us for x in reds) / ok
                    if reds and ok
                    else None,
                    "foreign_cpu_max": max(
                        (r.foreign_proxy_core for r in runs if r.foreign_proxy_core is not None),
                        default=None,
                    ),
                    "ok": ok,
                    "errors": sum(r.result.errors for r in runs),
                    "statuses": statuses,
                    "error_samples": [e for r in runs for e in r.result.error_samples][:3],
                    "runs": [r.to_dict() for r in runs],
                }
            out.append({"variant": which, "label": label, "scenarios": scenarios})
        return out


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


# -- talking to Redis and to the sidecar -------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def redis_call(port: int, *args: str) -> bytes:
    """One command on a fresh connection (RESP); the reply's payload (simple, integer or bulk)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), CONNECT_TIMEOUT_S)
    try:
        cmd = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        writer.write(cmd.encode())
        line = await asyncio.wait_for(reader.readline(), CONNECT_TIMEOUT_S)
        if line.startswith(b"-"):
            raise RuntimeError(f"redis {args[0]}: {line[1:].strip().decode(errors='replace')}")
        if line.startswith(b"$"):
            n = int(line[1:])
            return (
                (await asyncio.wait_for(reader.readexactly(n + 2), CONNECT_TIMEOUT_S))[:n] if n >= 0 else b""
            )
        return line[1:].strip()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@dataclass(frozen=True)
class RedisCounts:
    """Redis's counters (``INFO stats commandstats``); each snapshot is itself one INFO command."""

    commands: int  # total_commands_processed: the commands scripts run are included
    scripts: int  # EVAL / EVALSHA calls: the limiter's round trips
    script_us: int  # Redis's time in them

    def since(self, before: RedisCounts) -> RedisCounts:
        """What happened between two snapshots, without the first snapshot's INFO."""
        return RedisCounts(
            self.commands - before.commands - 1,
            self.scripts - before.scripts,
            self.script_us - before.script_us,
        )


_CMDSTAT = re.compile(r"^cmdstat_(eval|evalsha|evalsha_ro|eval_ro):calls=(\d+),usec=(\d+)", re.M)


async def redis_counts(port: int) -> RedisCounts:
    info = (await redis_call(port, "INFO", "stats", "commandstats")).decode()
    m = re.search(r"^total_commands_processed:(\d+)", info, re.M)
    if m is None:
        raise RuntimeError("redis INFO stats has no total_commands_processed")
    scripts = _CMDSTAT.findall(info)
    return RedisCounts(
        int(m.group(1)), sum(int(c) for _, c, _ in scripts), sum(int(u) for _, _, u in scripts)
    )


async def wait_redis(port: int, proc: Proc, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.proc.returncode}")
        with contextlib.suppress(OSError, RuntimeError, asyncio.TimeoutError):
            if await redis_call(port, "PING") == b"PONG":
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer PING on port {port} within {timeout:g} s")


async def post_head(url: str, key: str) -> tuple[int, dict[str, str]]:
    """One non-streaming POST /v1/messages with ``x-api-key: key``; its status and headers."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = request_body("json")
    head = (
        f"POST /v1/messages HTTP/1.1\r\nhost: {host}:{port}\r\nx-api-key: {key}\r\n"
        "anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
    try:
        writer.write(head.encode() + body)
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    status_line, *lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


async def check_variant(url: str, variant: VariantKey, deltas: int, redis_port: int | None) -> None:
    """Raises RuntimeError unless the sidecar behaves as its variant should."""
    problems: list[str] = []
    before = await redis_counts(redis_port) if redis_port is not None else None
    status, headers = await post_head(url, CLIENT_KEY)
    limit = headers.get("anthropic-ratelimit-requests-limit")
    if status != 200:
        problems.append(f"the bench key got {status}")
    elif variant == "off" and limit is not None:
        problems.append("admission off, yet anthropic-ratelimit-requests-limit is sent")
    elif variant != "off" and limit != str(LIMITS["requests_per_minute"]):
        problems.append(
            f"anthropic-ratelimit-requests-limit is {limit!r}, want {LIMITS['requests_per_minute']}"
        )
    if variant != "off":
        wrong, _ = await post_head(url, WRONG_KEY)
        if wrong != 401:
            problems.append(f"a wrong key got {wrong}, want 401")
    j = await run_load(url, "json", 1, 1, 10.0)
    s = await run_load(url, "sse", 1, 1, 10.0)
    want = sse_event_count(deltas)
    if j.ok != 1:
        problems.append(f"JSON: statuses {j.statuses}, {j.error_samples}")
    if s.ok != 1 or s.event_counts != {want: 1}:
        problems.append(
            f"SSE: statuses {s.statuses}, events {s.event_counts} (want {want}), {s.error_samples}"
        )
    if (
        redis_port is not None
        and before is not None
        and not (await redis_counts(redis_port)).since(before).scripts
    ):
        problems.append("Redis ran no limiter script for these requests")
    if problems:
        raise RuntimeError(f"admission check ({variant}) failed: " + "; ".join(problems))


def _core_busy(cpu: int) -> float | None:
    """Seconds of user + nice + system time of one CPU (``/proc/stat``)."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith(f"cpu{cpu} "):
                    vals = line.split()[1:4]
                    return sum(int(v) for v in vals) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    return None


async def measure(
    url: str,
    s: AdmScenario,
    requests: int,
    duration: float,
    sidecar: Proc | None,
    redis: Proc | None,
    redis_port: int | None,
    proxy_cpu: int | None,
) -> AdmRun:
    """One run; the sidecar's (and Redis's) CPU and Redis's commands over it."""
    red0 = await redis_counts(redis_port) if redis_port is not None else None
    p0 = sidecar.cpu_seconds() if sidecar is not None else None
    r0 = redis.cpu_seconds() if redis is not None else None
    b0 = _core_busy(proxy_cpu) if proxy_cpu is not None else None
    t0 = time.perf_counter()
    gc.collect()
    gc.disable()
    try:
        result = await run_load(url, s.mode, s.connections, requests, duration)
    finally:
        gc.enable()
    wall = time.perf_counter() - t0
    b1 = _core_busy(proxy_cpu) if proxy_cpu is not None else None
    p1 = sidecar.cpu_seconds() if sidecar is not None else None
    r1 = redis.cpu_seconds() if redis is not None else None
    run = AdmRun(result)
    if p0 is not None and p1 is not None:
        run.proxy_cpu_s = p1 - p0
        if b0 is not None and b1 is not None:
            run.foreign_proxy_core = max(0.0, (b1 - b0 - run.proxy_cpu_s) / wall)
    if r0 is not None and r1 is not None:
        run.redis_cpu_s = r1 - r0
    if redis_port is not None and red0 is not None:
        run.redis = (await redis_counts(redis_port)).since(red0)
    return run


# -- the phase ---------------------------------------------------------------------------------------
@dataclass
class AdmissionPhase:
    """What the scenario ran and measured. ``skipped``: why it did not run; ``error``: what ended it
    early (what was measured until then is kept in ``outcome``)."""

    skipped: str | None = None
    error: str | None = None
    duration: float = 0.0
    repeat: int = 0
    variants: tuple[Variant, ...] = VARIANTS
    notes: list[str] = field(default_factory=list)  # e.g. the redis variant skipped
    argv: dict[str, list[str]] = field(default_factory=dict)  # variant -> sidecar command
    configs: dict[str, str] = field(default_factory=dict)  # variant -> config YAML
    redis_argv: list[str] | None = None
    outcome: AdmissionOutcome | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "skipped": self.skipped,
            "error": self.error,
            "notes": self.notes,
            "duration_s": self.duration,
            "repeat": self.repeat,
            "limits": LIMITS,
            "redis_timeout_s": REDIS_TIMEOUT_S,
            "variants": [
                {
                    "key": v.key,
                    "label": v.label,
                    "sidecar_argv": self.argv.get(v.key),
                    "config_yaml": self.configs.get(v.key),
                }
                for v in self.variants
            ],
            "redis_argv": self.redis_argv,
            "scenarios": [
                {
                    "key": s.key,
                    "label": s.label,
                    "mode": s.mode,
                    "connections": s.connections,
                    "metric": s.metric,
                }
                for s in ADM_SCENARIOS
            ],
            "rows": self.outcome.rows() if self.outcome is not None else [],
        }


def run_admission(
    phase: AdmissionPhase,
    upstream_url: str,
    spawn: Spawn,
    sidecar_line: re.Pattern[str],
    *,
    sidecar_flags: list[str],
    taskset_proxy: list[str],
    taskset_other: list[str],
    proxy_cpu: int | None,
    requests: int,
    warmup: float,
    deltas: int,
    progress: Callable[[str], None] = print,
) -> None:
    """Start Redis, then per repetition measure direct and each variant's sidecar (one at a time);
    stop everything. Fills ``phase``; a problem ends the phase early into ``phase.error``."""
    redis: Proc | None = None
    redis_port: int | None = None
    variants = list(phase.variants)
    binary = shutil.which("redis-server")
    if binary is None:
        variants = [v for v in variants if v.key != "redis"]
        phase.notes.append("redis variant skipped: redis-server is not installed")
    phase.variants = tuple(variants)
    outcome = phase.outcome = AdmissionOutcome(phase.variants)
    with tempfile.TemporaryDirectory(prefix="bench-admission-") as tmp:
        try:
            if binary is not None:
                redis_port = free_port()
                phase.redis_argv = [
                    *taskset_other,
                    binary,
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]
                redis = spawn("redis-server", phase.redis_argv, "redis.stdout.log", False)
                asyncio.run(wait_redis(redis_port, redis))
            redis_url = f"redis://127.0.0.1:{redis_port}/0" if redis_port is not None else None
            for v in variants:
                phase.configs[v.key] = admission_config(upstream_url, v.key, redis_url)
                path = Path(tmp) / f"admission-{v.key}.yaml"
                path.write_text(phase.configs[v.key])
                phase.argv[v.key] = [sys.executable, "-m", "sidecar", "--config", str(path), *sidecar_flags]
            starts: dict[str, int] = {}
            for rep in range(phase.repeat):
                asyncio.run(_direct(outcome, upstream_url, phase, rep, requests, proxy_cpu, progress))
                order = variants if rep % 2 == 0 else list(reversed(variants))
                for v in order:
                    n = starts.get(v.key, 0)
                    starts[v.key] = n + 1
                    child = spawn(
                        f"sidecar (admission {v.key})",
                        [*taskset_proxy, *phase.argv[v.key]],
                        f"sidecar-admission-{v.key}.stderr.log",
                        n > 0,
                    )
                    try:
                        url = child.wait_for_line(sidecar_line, STARTUP_TIMEOUT_S).group(1)
                        asyncio.run(
                            _variant(
                                outcome,
                                v,
                                url,
                                child,
                                redis if v.key == "redis" else None,
                                redis_port if v.key == "redis" else None,
                                phase,
                                rep,
                                requests=requests,
                                warmup=warmup,
                                deltas=deltas,
                                proxy_cpu=proxy_cpu,
                                progress=progress,
                            )
                        )
                        if child.proc.poll() is not None:
                            raise RuntimeError(
                                f"the admission sidecar ({v.key}) exited during the run (code {child.proc.returncode})"
                            )
                    finally:
                        child.stop()
        except (RuntimeError, OSError) as exc:
            phase.error = str(exc).split("\n")[0][:500]
            progress(f"warning: admission overhead stopped early: {phase.error}")
        finally:
            if redis is not None:
                redis.stop()


async def _direct(
    outcome: AdmissionOutcome,
    upstream_url: str,
    phase: AdmissionPhase,
    rep: int,
    requests: int,
    proxy_cpu: int | None,
    progress: Callable[[str], None],
) -> None:
    for s in ADM_SCENARIOS:
        run = await measure(upstream_url, s, requests, phase.duration, None, None, None, proxy_cpu)
        outcome.add("direct", s.key, run)
        progress(_line(rep, phase.repeat, "direct", s, run))


async def _variant(
    outcome: AdmissionOutcome,
    v: Variant,
    url: str,
    sidecar: Proc,
    redis: Proc | None,
    redis_port: int | None,
    phase: AdmissionPhase,
    rep: int,
    *,
    requests: int,
    warmup: float,
    deltas: int,
    proxy_cpu: int | None,
    progress: Callable[[str], None],
) -> None:
    """A freshly started variant: check, warm up, measure every scenario."""
    await check_variant(url, v.key, deltas, redis_port)
    # At the highest concurrency measured: the Redis client's pool grows to it, and each new
    # connection costs the sidecar milliseconds of CPU (redis-py reads its package metadata).
    if warmup > 0:
        for mode in ("json", "sse"):
            await run_load(url, mode, WARMUP_CONNECTIONS, requests, warmup / 2)
    for s in ADM_SCENARIOS:
        run = await measure(url, s, requests, phase.duration, sidecar, redis, redis_port, proxy_cpu)
        outcome.add(v.key, s.key, run)
        progress(_line(rep, phase.repeat, v.key, s, run))


def _line(rep: int, repeat: int, which: str, s: AdmScenario, run: AdmRun) -> str:
    r = run.result
    value = s.value(r)
    shown = (
        "n/a" if value is None else (f"{value:,.0f} req/s" if s.kind == "ratio" else f"p50 {value:.3f} ms")
    )
    cpu = run.cpu_us_per_request()
    return (
        f"  [{rep + 1}/{repeat}] admission {which:<7} {s.label:<10} {shown:>16}"
        + (f"  CPU {cpu:,.0f} us/req" if cpu is not None else "")
        + (
            f"  redis {run.redis.scripts / r.ok:.2f} calls, {run.redis.commands / r.ok:.1f} commands, "
            f"{run.redis.script_us / r.ok:.0f} us per request"
            if run.redis is not None and r.ok
            else ""
        )
        + (f"  errors {r.errors} {r.statuses} {r.error_samples[:1]}" if r.errors else "")
    )


# -- the table ---------------------------------------------------------------------------------------
def render_admission(phase: AdmissionPhase) -> str:
    if phase.outcome is None or not phase.outcome.runs:
        why = phase.skipped or phase.error
        return f"\nadmission overhead: {'skipped' if phase.skipped else 'failed'} ({why})"
    rows = phase.outcome.rows()

    def cell(row: dict[str, object], key: str) -> dict[str, object]:
        scenarios = row["scenarios"]
        assert isinstance(scenarios, dict)
        out = scenarios[key]
        assert isinstance(out, dict)
        return out

    def num(v: object, fmt: str) -> str:
        return format(v, fmt) if isinstance(v, float) else "-"

    table = [
        (
            "variant",
            "JSON c=1 p50 ms",
            "added",
            "JSON c=32 req/s",
            "vs off",
            "CPU us/req",
            "added",
            "SSE c=1 TTFT p50 ms",
            "added",
            "errors",
        )
    ]
    for row in rows:
        j1, j32, s1 = cell(row, "json_c1"), cell(row, "json_c32"), cell(row, "sse_c1")
        errors = sum(int(str(c["errors"])) for c in (j1, j32, s1))
        table.append(
            (
                str(row["label"]),
                num(j1["value"], ".3f"),
                num(j1["vs_off"], "+.3f"),
                num(j32["value"], ",.0f"),
                num(j32["vs_off"], ".3f"),
                num(j32["cpu_us_per_request"], ",.0f"),
                num(j32["added_cpu_us_per_request"], "+,.0f"),
                num(s1["value"], ".3f"),
                num(s1["vs_off"], "+.3f"),
                str(errors),
            )
        )
    out = [
        "",
        f"admission overhead: python -m sidecar --config, one key in a tier with {limits_desc()} (never "
        f"refused), against admission off ({phase.duration:g} s per run, {phase.repeat} repetition(s), medians):",
        "",
        *format_table(table, range(1, len(table[0]))),
    ]
    out.append(
        "added = variant - off (ms; CPU: the sidecar's CPU time per request at JSON c=32, us), vs off = "
        "requests/s ratio variant / off, same repetition; direct = no proxy, the load generator's ceiling."
    )
    for row in rows:
        if row["variant"] != "redis":
            continue
        parts = []
        for key in ("json_c1", "json_c32", "sse_c1"):
            c = cell(row, key)
            calls, cmds, us = (
                c["redis_calls_per_request"],
                c["redis_commands_per_request"],
                c["redis_script_us_per_request"],
            )
            if isinstance(calls, float) and isinstance(cmds, float) and isinstance(us, float):
                parts.append(f"{c['label']} {calls:.2f} / {cmds:.1f} / {us:.0f}")
        out.append(
            "redis, per request: script calls (round trips) / commands run (the scripts' included) / Redis's "
            "time in the scripts, us: " + ", ".join(parts)
        )
    for row in rows:
        for key in ("json_c1", "json_c32", "sse_c1"):
            c = cell(row, key)
            if c["errors"]:
                out.append(
                    f"note [{row['label']} {c['label']}]: {c['errors']} errors, statuses {c['statuses']}, "
                    f"e.g. {c['error_samples']}"
                )
    out.extend(f"note: {n}" for n in phase.notes)
    if phase.error is not None:
        out.append(f"WARNING: stopped early, the rows cover the runs before: {phase.error}")
    noisy = []
    for row in rows[1:]:  # not the direct row: no sidecar, nothing to tell apart
        for key in ("json_c1", "json_c32", "sse_c1"):
            c = cell(row, key)
            foreign = c["foreign_cpu_max"]
            if isinstance(foreign, float) and foreign > FOREIGN_LOAD_WARN:
                noisy.append(f"{row['label']} {c['label']} {foreign:.0%}")
    if noisy:
        out.append(
            "WARNING: other processes used CPU on the proxy's core (max share: "
            + ", ".join(noisy)
            + "); these numbers are noisy, rerun on a quiet machine"
        )
    return "\n".join(out)
