"""``python -m bench``: measure the sidecar against a direct call to a fake upstream, in one run.

Starts the fake upstream (``bench.fake_upstream``) and the sidecar as subprocesses, then for each
scenario measures direct-to-upstream and through-the-sidecar back to back, and reports the ratio
(throughput) or the added milliseconds (latency), as perf-facts.md does:

- JSON c=32: requests/s ratio        (target >= 0.12)
- JSON c=1:  added p50 latency, ms   (target <= 0.8 ms)
- SSE c=32:  events/s ratio          (target >= 0.35)
- SSE c=1:   added p50 time to first content delta, ms (informational)

The same four through the sidecar's gRPC door (rows marked "gRPC", no targets): unary
``CreateMessage`` at c=32 (requests/s ratio) and c=1 (added p50 latency), ``StreamMessage`` at c=32
(events/s ratio) and c=1 (added p50 TTFT), driven by ``bench/grpc_loadgen.py`` (grpc.aio, one
channel) in its own process, and compared with the direct HTTP figures of the same run.

The same four HTTP rows through the OpenAI-translated path (rows marked "(openai)", no targets): a
second sidecar process started with ``--provider openai`` (otherwise the same flags, pinned to the same
CPU) in front of the fake upstream's ``POST /v1/chat/completions``, so it translates each Messages
request to a chat completion and the answer or chunk stream back to Messages / Anthropic SSE. They are
compared with the direct Anthropic runs of the matching rows in the same repetition, and a second table
compares them with the pass-through rows: "translated vs pass-through", openai via / anthropic via per
repetition. ``SSE c=32 (openai)`` compares streams/s rather than events/s: the translated stream carries
the same N content deltas but no ``ping``, one event fewer than the pass-through stream. Only one
sidecar runs at a time (both would compete for the proxy's CPU): each repetition measures one, stops
it and starts the other (alternating which goes first), each fresh start checked and warmed up.
``--no-openai`` skips these rows (and the second sidecar).

Then cancellation latency (``bench/cancel.py``, no targets): how long after a client closes its HTTP
connection or cancels its gRPC call (or its gRPC deadline passes) the upstream sees the upstream
request closed, before the first byte and mid-stream; p50/p99/max over sequential probes. There is no
direct baseline: without a proxy there is nothing between client and upstream to close, so it is 0 by
definition.

Then the failing upstream (``bench/failing.py``, no targets): a third sidecar process (alone, pinned to
the proxy's CPU) started with ``--config`` and a retry policy (3 attempts, 10..50 ms backoff, breaker
off) in front of the fake upstream, whose model ``bench-fail-20`` fails every 5th upstream attempt with
HTTP 529 (``bench-fail-20-inband``: streams fail in-band, ``event: error`` after ``message_start``). JSON
c=1, JSON c=8 and SSE c=1 run against the healthy model and the failing model(s) through it; the table
gives p50/p90/p99 latency (TTFT for SSE), requests/s, the latency the failures add over the healthy
model, the client-visible error rate (0 when the retries work) and the upstream attempts per request.
``--no-failures`` skips it; it needs ``python -m sidecar`` (not the stand-in, not ``--sidecar-cmd``).

Then admission overhead (``bench/admission.py``, no targets): what client-key admission with per-key
limits costs per request. Three more sidecar processes (one at a time, pinned to the proxy's CPU),
``--config`` with the same route to the fake upstream: admission off, admission with the load
generator's key in a tier whose limits are never reached on the in-process backend, and the same on
Redis (a ``redis-server`` the scenario starts on a free loopback port, pinned to the load generator's
CPU). Per variant JSON c=1 p50 latency, JSON c=32 requests/s (and the sidecar's CPU time per request)
and SSE c=1 p50 TTFT, and against "off" of the same repetition the added ms and the throughput ratio;
the variants' order alternates per repetition, and the direct runs of the phase are shown for context.
``--no-admission`` skips it; ``--only admission`` runs only it (no main, cancellation or failing rows).

With two or more CPUs and ``taskset``, the proxy is pinned to the first CPU and the fake upstream and
this process (the load generator) to the second: the proxy has a core to itself, and the direct
numbers are the load generator's own ceiling. A ratio near 1.0 means that ceiling, not the proxy,
is the limit. The gRPC load generator runs as its own process, pinned to the second CPU as well.

The sidecar command defaults to ``python -m sidecar --upstream URL --upstream-key bench-key
--http-port 0 --grpc-port 0`` (``--no-grpc`` instead with ``--no-grpc``, which skips every gRPC
measurement); while ``sidecar/__main__.py`` does not exist, or with ``--standin``, the stand-in proxy
``bench/_standin_proxy.py`` (no gRPC door) is used. ``--sidecar-cmd`` overrides the command: a
template where ``{python}`` is this interpreter and ``{upstream}`` the upstream URL; without
``{upstream}`` the standard flags are appended. The command must print
``sidecar http listening on http://HOST:PORT``, and ``sidecar grpc listening on HOST:PORT`` for the
gRPC measurements; for the openai rows ``--provider openai`` is appended to a custom command (the
stand-in proxy has no OpenAI path: no openai rows).

Results go to stdout (a table) and to ``bench/results/latest.json``. The exit code is 0 even when a
target is missed; it is 1 only when the harness itself could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from bench.admission import QUICK_DURATION_S as ADMISSION_QUICK_DURATION_S
from bench.admission import AdmissionPhase, render_admission, run_admission
from bench.cancel import (
    BEFORE_WAIT_S,
    CLOSE_WAIT_S,
    FIRST_DELTA_TIMEOUT_S,
    CancelKind,
    CancelResult,
    run_http_probes,
)
from bench.failing import (
    FAIL_SCENARIOS,
    QUICK_DURATION_S,
    FailOutcome,
    policy_config,
    policy_desc,
    render_failures,
    run_failures,
)
from bench.fake_upstream import FAIL_EVERY, install_uvloop, sse_event_count
from bench.loadgen import LoadResult, Mode, run_load

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
UPSTREAM_KEY = "bench-key"
SIDECAR_LINE = re.compile(r"sidecar http listening on (http://[\w.\-\[\]:]+:(\d+))")
UPSTREAM_LINE = re.compile(r"fake upstream listening on (http://[\w.\-\[\]:]+:(\d+))")
GRPC_LINE = re.compile(r"sidecar grpc listening on ([\w.\-\[\]:]+:(\d+))")
GRPC_READY_LINE = re.compile(r"^grpc loadgen ready$")
STARTUP_TIMEOUT_S = 30.0
GRPC_LINE_TIMEOUT_S = 10.0  # after the HTTP line
FOREIGN_LOAD_WARN = 0.15  # other processes' CPU (in cores) above which a result is called noisy
LOADGEN_BOUND_RATIO = 0.85  # at or above this, the load generator (not the proxy) is the limit
MODES: tuple[Mode, ...] = ("json", "sse")
Provider = Literal["anthropic", "openai"]


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    mode: Mode
    connections: int
    metric: str  # what is compared
    kind: Literal["ratio", "added_ms"]
    target: float | None  # ratio >= target, or added ms <= target
    door: Literal["http", "grpc"] = "http"  # which door of the sidecar the "via" runs use
    # gRPC and openai rows: the pass-through HTTP scenario whose direct runs they are compared with
    baseline: str | None = None
    provider: Provider = "anthropic"  # which sidecar: pass-through, or --provider openai (translated)

    def value(self, r: LoadResult) -> float | None:
        if self.metric in ("requests_per_s", "streams_per_s"):  # streams/s: completed SSE answers/s
            return r.requests_per_s if r.ok else None
        if self.metric == "events_per_s":
            return r.events_per_s if r.ok else None
        if self.metric == "latency_p50_ms":
            return r.latency_ms.get("p50")
        if self.metric == "ttft_p50_ms":
            return r.ttft_ms.get("p50")
        raise ValueError(self.metric)


SCENARIOS = (
    Scenario("json_c32", "JSON c=32", "json", 32, "requests_per_s", "ratio", 0.12),
    Scenario("json_c1", "JSON c=1", "json", 1, "latency_p50_ms", "added_ms", 0.8),
    Scenario("sse_c32", "SSE c=32", "sse", 32, "events_per_s", "ratio", 0.35),
    Scenario("sse_c1", "SSE c=1", "sse", 1, "ttft_p50_ms", "added_ms", None),
)
# The OpenAI-translated path (a second sidecar, --provider openai), compared with the direct runs of
# the matching row above. No targets. SSE c=32 counts streams: its events differ (no ping), its deltas not.
OPENAI_SCENARIOS = (
    Scenario(
        "openai_json_c32",
        "JSON c=32 (openai)",
        "json",
        32,
        "requests_per_s",
        "ratio",
        None,
        baseline="json_c32",
        provider="openai",
    ),
    Scenario(
        "openai_json_c1",
        "JSON c=1 (openai)",
        "json",
        1,
        "latency_p50_ms",
        "added_ms",
        None,
        baseline="json_c1",
        provider="openai",
    ),
    Scenario(
        "openai_sse_c32",
        "SSE c=32 (openai)",
        "sse",
        32,
        "streams_per_s",
        "ratio",
        None,
        baseline="sse_c32",
        provider="openai",
    ),
    Scenario(
        "openai_sse_c1",
        "SSE c=1 (openai)",
        "sse",
        1,
        "ttft_p50_ms",
        "added_ms",
        None,
        baseline="sse_c1",
        provider="openai",
    ),
)
# The gRPC door, compared with the direct HTTP runs of the matching row above (mode json = unary
# CreateMessage, sse = StreamMessage). No targets.
GRPC_SCENARIOS = (
    Scenario(
        "grpc_unary_c32", "gRPC unary c=32", "json", 32, "requests_per_s", "ratio", None, "grpc", "json_c32"
    ),
    Scenario(
        "grpc_unary_c1", "gRPC unary c=1", "json", 1, "latency_p50_ms", "added_ms", None, "grpc", "json_c1"
    ),
    Scenario(
        "grpc_stream_c32", "gRPC stream c=32", "sse", 32, "events_per_s", "ratio", None, "grpc", "sse_c32"
    ),
    Scenario(
        "grpc_stream_c1", "gRPC stream c=1", "sse", 1, "ttft_p50_ms", "added_ms", None, "grpc", "sse_c1"
    ),
)


@dataclass(frozen=True)
class CancelScenario:
    key: str
    label: str
    door: Literal["http", "grpc"]
    kind: CancelKind
    request: str  # what the client does, for the table


CANCEL_SCENARIOS = (
    CancelScenario("cancel_http_before", "HTTP before first byte", "http", "before", "POST, close at 50 ms"),
    CancelScenario("cancel_http_after", "HTTP mid-stream", "http", "after", "stream, close at 1st delta"),
    CancelScenario(
        "cancel_grpc_before", "gRPC before first byte", "grpc", "before", "CreateMessage, cancel at 50 ms"
    ),
    CancelScenario(
        "cancel_grpc_deadline",
        "gRPC deadline, before 1st byte",
        "grpc",
        "deadline",
        "CreateMessage, 50 ms deadline",
    ),
    CancelScenario(
        "cancel_grpc_after", "gRPC mid-stream", "grpc", "after", "StreamMessage, cancel at 1st delta"
    ),
)
METRIC_LABELS = {
    "requests_per_s": "requests/s",
    "events_per_s": "events/s",
    "streams_per_s": "streams/s",
    "latency_p50_ms": "p50 latency ms",
    "ttft_p50_ms": "p50 TTFT ms",
}


# -- subprocesses ----------------------------------------------------------------------------------
class Child:
    """A subprocess in its own process group whose stdout is drained by a thread.

    With ``stdin_pipe``, ``command()`` talks to a worker (``bench.grpc_loadgen --serve``): one JSON
    command per stdin line, one ``result SEQ {json}`` line per command on stdout.
    """

    def __init__(
        self, name: str, argv: list[str], log_path: Path, *, stdin_pipe: bool = False, append: bool = False
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.lines: deque[str] = deque(maxlen=50)
        self._seq = 0
        self._first: dict[str, str] = {}
        self._seen = threading.Condition()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # closed in stop(); with ``append`` (a restart), the tail is read from this start on only
        self._log: IO[bytes] = open(log_path, "ab" if append else "wb")
        self._log_start = self._log.tell()
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._log,
                start_new_session=True,  # so stop() can signal the whole group it started
            )
        except BaseException:
            self._log.close()
            raise
        self._reader = threading.Thread(target=self._drain, name=f"drain-{name}", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        for raw in stdout:  # ends at EOF, when the child exits
            line = raw.decode("utf-8", "replace").rstrip()
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()

    def wait_for_line(
        self, pattern: re.Pattern[str], timeout: float, what: str = "its listening line"
    ) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self._seen:
            for _ in range(int(timeout * 20) + 1):  # bounded
                for line in [*self.lines, *self.stderr_tail(16384).splitlines()]:
                    m = pattern.search(line)
                    if m:
                        return m
                if self.proc.poll() is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._seen.wait(min(left, 0.05))
        code = self.proc.poll()
        how = (
            f"exited with code {code} before printing"
            if code is not None
            else f"did not print within {timeout:.0f} s"
        )
        raise RuntimeError(
            f"{self.name} {how} {what}; command: {shlex.join(self.argv)}\n"
            f"stdout tail: {list(self.lines)[-5:]}\nstderr tail: {self.stderr_tail()}"
        )

    def command(self, cmd: dict[str, object], timeout: float) -> dict[str, Any]:
        """Send one command to a worker and wait (blocking) for its answer; raises RuntimeError."""
        stdin = self.proc.stdin
        if stdin is None:
            raise RuntimeError(f"{self.name} has no stdin pipe")
        self._seq += 1
        seq = self._seq
        try:
            stdin.write((json.dumps({**cmd, "seq": seq}) + "\n").encode())
            stdin.flush()
        except OSError as exc:
            raise RuntimeError(f"{self.name}: cannot send a command: {exc}") from None
        m = self.wait_for_line(re.compile(rf"^result {seq} (.*)$"), timeout, f"the result of {cmd.get('op')}")
        out = json.loads(m.group(1))
        if not isinstance(out, dict):
            raise RuntimeError(f"{self.name}: unexpected answer {m.group(1)[:200]}")
        if "error" in out:
            raise RuntimeError(f"{self.name}: {cmd.get('op')} failed: {out['error']}")
        return out

    def stderr_tail(self, n: int = 2000) -> str:
        with contextlib.suppress(OSError):
            self._log.flush()
            with open(self.log_path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(self._log_start, size - n))
                return f.read().decode("utf-8", "replace")
        return ""

    def cpu_seconds(self) -> float | None:
        """utime + stime of the process itself (not of its children), from /proc."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        try:
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()  # a worker exits at EOF
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
            else:  # the leader is gone; make sure nothing it started in its group lingers
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
        finally:
            self._reader.join(timeout=2)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._log.close()


# -- measurement -----------------------------------------------------------------------------------
@dataclass
class Measurement:
    result: LoadResult
    proxy_cpu_util: float | None  # sidecar process CPU / wall (via runs only)
    upstream_cpu_util: float | None
    # CPU used by processes other than ours, in cores: on the proxy's core and on the load
    # generator's core when pinned, else (unpinned) all of it under "proxy_core".
    foreign_proxy_core: float | None = None
    foreign_loadgen_core: float | None = None


@dataclass
class ScenarioOutcome:
    scenario: Scenario
    direct: list[Measurement] = field(default_factory=list)
    via: list[Measurement] = field(default_factory=list)

    def values(self, which: str) -> list[float]:
        ms = self.direct if which == "direct" else self.via
        vals = [self.scenario.value(m.result) for m in ms]
        return [v for v in vals if v is not None]

    def compared(self) -> list[float]:
        """Per repetition: via/direct (ratio) or via - direct (added ms)."""
        out: list[float] = []
        for d, v in zip(self.direct, self.via, strict=False):
            dv, vv = self.scenario.value(d.result), self.scenario.value(v.result)
            if dv is None or vv is None:
                continue
            out.append(vv / dv if self.scenario.kind == "ratio" else vv - dv)
        return out

    def summary(self) -> dict[str, object]:
        s = self.scenario
        d, v, c = self.values("direct"), self.values("via"), self.compared()
        value = statistics.median(c) if c else None
        status = "ERROR" if value is None else "-"
        if value is not None and s.target is not None:
            ok = value >= s.target if s.kind == "ratio" else value <= s.target
            status = "PASS" if ok else "MISS"
        notes: list[str] = []
        if s.kind == "ratio" and value is not None and value >= LOADGEN_BOUND_RATIO:
            notes.append(
                f"ratio {value:.2f} is near 1.0: the load generator + fake upstream, not the proxy, is the limit "
                "(the proxy's true ratio cannot be resolved by this harness)"
            )
        lg_via = _median([m.result.loadgen_cpu_util for m in self.via])
        if s.door == "grpc" and lg_via is not None and lg_via >= LOADGEN_BOUND_RATIO:
            notes.append(
                f"the gRPC load generator (grpc.aio) used {lg_via:.0%} of its core: it, not only the sidecar, "
                "may be the limit"
            )
        via_errors = sum(m.result.errors for m in self.via)
        direct_errors = sum(m.result.errors for m in self.direct)
        if via_errors:
            samples = [e for m in self.via for e in m.result.error_samples][:2]
            notes.append(f"{via_errors} errors through the sidecar, e.g. {samples}")
        if direct_errors:
            notes.append(f"{direct_errors} errors direct (harness problem)")
        pcpu = [m.proxy_cpu_util for m in self.via if m.proxy_cpu_util is not None]
        # Share of its (pinned) core the proxy could have used: what other processes left it.
        left = [
            m.proxy_cpu_util / max(0.05, 1.0 - (m.foreign_proxy_core or 0.0))
            for m in self.via
            if m.proxy_cpu_util is not None and m.foreign_loadgen_core is not None
        ]
        if s.kind == "ratio" and left and statistics.median(left) < 0.8 and value is not None:
            if value < LOADGEN_BOUND_RATIO:
                notes.append(
                    f"the proxy used only {statistics.median(left):.0%} of the CPU it had: it was waiting "
                    "(not CPU-bound), e.g. on a lock, a timer or a flow-control stall"
                )
        foreign = [
            x
            for m in self.direct + self.via
            for x in (m.foreign_proxy_core, m.foreign_loadgen_core)
            if x is not None
        ]
        return {
            "scenario": s.key,
            "label": s.label,
            "mode": s.mode,
            "connections": s.connections,
            "door": s.door,
            "provider": s.provider,
            "direct_from": s.baseline or s.key,
            "metric": s.metric,
            "kind": s.kind,
            "direct": statistics.median(d) if d else None,
            "via": statistics.median(v) if v else None,
            "value": value,
            "per_repetition": c,
            "target": s.target,
            "status": status,
            "notes": notes,
            "proxy_cpu_util": statistics.median(pcpu) if pcpu else None,
            "foreign_cpu_max": max(foreign) if foreign else None,
            "loadgen_cpu_util_via": lg_via,
            "loadgen_cpu_util_direct": _median([m.result.loadgen_cpu_util for m in self.direct]),
            "runs": {
                "direct": [m.result.to_dict() | _cpu(m) for m in self.direct],
                "via": [m.result.to_dict() | _cpu(m) for m in self.via],
            },
        }


@dataclass
class CancelOutcome:
    scenario: CancelScenario
    result: CancelResult | None
    problem: str | None = None  # why there is no result
    proxy_cpu_util: float | None = None
    foreign_proxy_core: float | None = None
    foreign_loadgen_core: float | None = None

    def summary(self) -> dict[str, object]:
        cs, r = self.scenario, self.result
        notes: list[str] = []
        status = "-"
        pct: dict[str, float] = {}
        if r is None:
            status = "ERROR"
            notes.append(self.problem or "no result")
        else:
            pct = r.close_ms
            if not r.closed:
                status = "ERROR"
            if r.missing:
                status = f"{r.missing} LEFT OPEN"
                notes.append(
                    f"{r.missing} of {r.probes} upstream requests were still open {CLOSE_WAIT_S:g} s after the "
                    "client went away"
                )
            if r.errors:
                notes.append(f"{r.errors} of {r.probes} probes failed, e.g. {r.error_samples[:2]}")
            if r.negative:
                notes.append(
                    f"{r.negative} upstream closes came before the client's (the sidecar gave up on its own)"
                )
            if cs.kind == "deadline" and "p50" in r.client_end_ms:
                notes.append(
                    "the client is measured from the deadline it set; the gRPC client itself reported "
                    f"DEADLINE_EXCEEDED p50 {r.client_end_ms['p50']:.3f} ms after it (its own timer and "
                    "scheduling), and the sidecar counts its deadline from when the request reached it"
                )
        foreign = [x for x in (self.foreign_proxy_core, self.foreign_loadgen_core) if x is not None]
        return {
            "scenario": cs.key,
            "label": cs.label,
            "door": cs.door,
            "kind": cs.kind,
            "request": cs.request,
            "metric": "upstream close - client close, ms",
            "probes": r.probes if r else 0,
            "closed": r.closed if r else 0,
            "missing": r.missing if r else 0,
            "errors": r.errors if r else 0,
            "p50_ms": pct.get("p50"),
            "p99_ms": pct.get("p99"),
            "max_ms": pct.get("max"),
            "mean_ms": pct.get("mean"),
            "status": status,
            "notes": notes,
            "proxy_cpu_util": self.proxy_cpu_util,
            "foreign_cpu_max": max(foreign) if foreign else None,
            "result": r.to_dict() if r else None,
        }


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _cpu(m: Measurement) -> dict[str, float | None]:
    return {
        "proxy_cpu_util": m.proxy_cpu_util,
        "upstream_cpu_util": m.upstream_cpu_util,
        "foreign_cpu_on_proxy_core": m.foreign_proxy_core,
        "foreign_cpu_on_loadgen_core": m.foreign_loadgen_core,
    }


def _cpu_busy() -> dict[str, float]:
    """Seconds of user + nice + system time per ``/proc/stat`` cpu line ("cpu", "cpu0", ...)."""
    out: dict[str, float] = {}
    tck = os.sysconf("SC_CLK_TCK")
    try:
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                name, *vals = line.split()
                out[name] = (int(vals[0]) + int(vals[1]) + int(vals[2])) / tck
    except (OSError, ValueError, IndexError):
        return {}
    return out


@dataclass
class CpuUse:
    """CPU seconds used during one window, and what other processes used (in cores)."""

    wall: float
    proxy: float | None
    upstream: float | None
    foreign_proxy_core: float | None = None
    foreign_loadgen_core: float | None = None


class CpuWindow:
    """Measures the CPU of the sidecar, the fake upstream and the load generator(s) over a window.

    The load generator is this process and, when there is one, the gRPC worker process.
    """

    def __init__(self, plan: Plan, proxy: Child, upstream: Child, worker: Child | None) -> None:
        self._plan, self._proxy, self._upstream, self._worker = plan, proxy, upstream, worker
        self._marks = self._mark()
        self._t0 = time.perf_counter()

    def _mark(self) -> tuple[float | None, float | None, float | None, float, dict[str, float]]:
        w = self._worker.cpu_seconds() if self._worker is not None else 0.0
        return self._proxy.cpu_seconds(), self._upstream.cpu_seconds(), w, time.process_time(), _cpu_busy()

    def close(self) -> CpuUse:
        wall = time.perf_counter() - self._t0
        (p0, u0, w0, s0, b0), (p1, u1, w1, s1, b1) = self._marks, self._mark()
        pcpu = p1 - p0 if p0 is not None and p1 is not None else None
        ucpu = u1 - u0 if u0 is not None and u1 is not None else None
        use = CpuUse(wall, pcpu, ucpu)
        if pcpu is None or ucpu is None:
            return use

        def busy(key: str) -> float | None:
            return b1[key] - b0[key] if key in b0 and key in b1 else None

        own_lg = ucpu + (s1 - s0) + (w1 - w0 if w0 is not None and w1 is not None else 0.0)
        plan = self._plan
        if plan.pin:
            bp, bl = busy(f"cpu{plan.proxy_cpu}"), busy(f"cpu{plan.loadgen_cpu}")
            if bp is not None and bl is not None:
                use.foreign_proxy_core = max(0.0, (bp - pcpu) / wall)
                use.foreign_loadgen_core = max(0.0, (bl - own_lg) / wall)
        else:
            b = busy("cpu")
            if b is not None:
                use.foreign_proxy_core = max(0.0, (b - pcpu - own_lg) / wall)
        return use


async def grpc_load(worker: Child, target: str, mode: Mode, connections: int, plan: Plan) -> LoadResult:
    """One gRPC measurement, run by the worker process; a failure becomes an errored result."""
    cmd: dict[str, object] = {
        "op": "load",
        "target": target,
        "mode": "stream" if mode == "sse" else "unary",
        "connections": connections,
        "requests": plan.requests,
        "duration": plan.duration,
    }
    try:
        out = await asyncio.to_thread(worker.command, cmd, plan.duration + 45.0)
    except RuntimeError as exc:
        return LoadResult(
            mode=mode,
            url=f"grpc://{target}",
            connections=connections,
            max_requests=plan.requests,
            duration_limit_s=plan.duration,
            errors=1,
            error_samples=[str(exc)[:500]],
        )
    return LoadResult.from_dict(out)


async def measure(
    url: str,
    scenario: Scenario,
    plan: Plan,
    proxy: Child,
    upstream: Child,
    via: bool,
    worker: Child | None = None,
) -> Measurement:
    """One run; ``url`` is ``http://...`` for the HTTP door or direct, ``host:port`` for gRPC."""
    window = CpuWindow(plan, proxy, upstream, worker)
    if scenario.door == "grpc":
        assert worker is not None
        result = await grpc_load(worker, url, scenario.mode, scenario.connections, plan)
    else:
        gc.collect()
        gc.disable()
        try:
            result = await run_load(url, scenario.mode, scenario.connections, plan.requests, plan.duration)
        finally:
            gc.enable()
    cpu = window.close()
    return Measurement(
        result,
        cpu.proxy / cpu.wall if cpu.proxy is not None and via else None,
        cpu.upstream / cpu.wall if cpu.upstream is not None else None,
        cpu.foreign_proxy_core,
        cpu.foreign_loadgen_core,
    )


# -- orchestration ---------------------------------------------------------------------------------
@dataclass
class Plan:
    duration: float
    requests: int
    repeat: int
    warmup: float
    deltas: int
    pin: bool
    proxy_cpu: int | None
    loadgen_cpu: int | None
    sidecar_argv: list[str]
    sidecar_desc: str
    cancel_n: int = 50  # sequential cancellation probes per row
    openai_argv: list[str] | None = None  # the --provider openai sidecar; None: no openai rows


class Sidecars:
    """The sidecar processes, one alive at a time: both would be pinned to the proxy's CPU.

    ``start`` (blocking) stops the running one if it is the other provider's, then starts and waits
    for ``provider``'s; a restart appends to that provider's log.
    """

    def __init__(self, argv: dict[Provider, list[str]], taskset: list[str]) -> None:
        self.argv = argv
        self.taskset = taskset
        self.current: Child | None = None
        self.provider: Provider | None = None
        self.url = ""
        self.starts: dict[Provider, int] = {}
        self.problems: list[str] = []  # sidecars that exited on their own

    def start(self, provider: Provider) -> Child:
        if self.current is not None and self.provider == provider:
            return self.current
        self.stop()
        n = self.starts.get(provider, 0)
        self.starts[provider] = n + 1
        openai = provider == "openai"
        self.current = Child(
            "sidecar (openai)" if openai else "sidecar",
            [*self.taskset, *self.argv[provider]],
            RESULTS / ("sidecar-openai.stderr.log" if openai else "sidecar.stderr.log"),
            append=n > 0,
        )
        self.provider = provider
        self.url = self.current.wait_for_line(SIDECAR_LINE, STARTUP_TIMEOUT_S).group(1)
        return self.current

    def stop(self) -> None:
        child = self.current
        if child is None:
            return
        if child.proc.poll() is not None and self.url:  # it had started: it died on its own
            self.problems.append(f"the {child.name} exited during the run (code {child.proc.returncode})")
        self.current, self.provider, self.url = None, None, ""
        child.stop()


@dataclass
class OpenAIPath:
    """The translated path's rows: skipped (and why) or measured."""

    skipped: str | None = None


@dataclass
class FailurePhase:
    """The failing-upstream rows: skipped (and why) or measured by a sidecar with a retry policy."""

    skipped: str | None = None
    duration: float = 0.0
    argv: list[str] | None = None
    config: str = ""
    outcomes: list[FailOutcome] = field(default_factory=list)
    direct: dict[str, object] = field(default_factory=dict)


def _failures_skipped(args: argparse.Namespace, standin: bool) -> str | None:
    if args.no_failures:
        return "--no-failures"
    if standin:
        return "the stand-in proxy has no retry policies"
    if args.sidecar_cmd:
        return "a custom --sidecar-cmd (this scenario starts python -m sidecar --config)"
    return None


def _admission_skipped(args: argparse.Namespace, standin: bool) -> str | None:
    if args.no_admission:
        return "--no-admission"
    if standin:
        return "the stand-in proxy has no admission"
    if args.sidecar_cmd:
        return "a custom --sidecar-cmd (this scenario starts python -m sidecar --config)"
    return None


def _spawn(name: str, argv: list[str], log: str, append: bool) -> Child:
    return Child(name, argv, RESULTS / log, append=append)


def run_admission_phase(
    args: argparse.Namespace, plan: Plan, phase: AdmissionPhase, upstream_url: str, taskset_p: list[str]
) -> None:
    """The admission-overhead sidecars (and Redis), one at a time; see ``bench.admission``."""
    taskset_u = ["taskset", "-c", str(plan.loadgen_cpu)] if plan.pin else []
    print("admission overhead: off, memory and redis sidecars, one at a time ...", flush=True)
    run_admission(
        phase,
        upstream_url,
        _spawn,
        SIDECAR_LINE,
        sidecar_flags=[
            "--http-port",
            "0",
            "--no-grpc",
            "--admin-port",
            "0",
            *(["--no-metrics"] if args.no_metrics else []),
        ],
        taskset_proxy=taskset_p,
        taskset_other=taskset_u,
        proxy_cpu=plan.proxy_cpu if plan.pin else None,
        requests=plan.requests,
        warmup=plan.warmup,
        deltas=plan.deltas,
        progress=lambda line: print(line, flush=True),
    )


def run_failure_phase(
    args: argparse.Namespace, plan: Plan, phase: FailurePhase, upstream_url: str, taskset: list[str]
) -> None:
    """Start the policy sidecar (alone, on the proxy's CPU), measure, stop it. A problem is recorded
    in ``phase.skipped`` and printed; the rest of the run stands."""
    child: Child | None = None
    with tempfile.TemporaryDirectory(prefix="bench-policy-") as tmp:
        config = Path(tmp) / "policy.yaml"
        phase.config = policy_config(upstream_url)
        config.write_text(phase.config)
        phase.argv = [
            sys.executable,
            "-m",
            "sidecar",
            "--config",
            str(config),
            "--http-port",
            "0",
            "--no-grpc",
            "--admin-port",
            "0",
            *(["--no-metrics"] if args.no_metrics else []),
        ]
        try:
            child = Child("sidecar (policy)", [*taskset, *phase.argv], RESULTS / "sidecar-policy.stderr.log")
            url = child.wait_for_line(SIDECAR_LINE, STARTUP_TIMEOUT_S).group(1)
            print(f"failing upstream: policy sidecar on {url}, checking and warming up ...", flush=True)
            phase.outcomes, phase.direct = asyncio.run(
                run_failures(
                    upstream_url,
                    url,
                    duration=phase.duration,
                    requests=plan.requests,
                    repeat=plan.repeat,
                    warmup=plan.warmup / 2,
                    progress=lambda line: print(line, flush=True),
                )
            )
            if child.proc.poll() is not None:
                raise RuntimeError(f"the policy sidecar exited during the run (code {child.proc.returncode})")
        except (RuntimeError, OSError) as exc:
            phase.skipped = str(exc).split("\n")[0][:500]
            print(f"warning: no failing-upstream measurements: {phase.skipped}", flush=True)
        finally:
            if child is not None:
                child.stop()


def _standin_argv() -> list[str]:
    return [sys.executable, "-m", "bench._standin_proxy"]


def _sidecar_argv(
    args: argparse.Namespace, upstream_url: str, provider: Provider = "anthropic"
) -> tuple[list[str], str]:
    """The sidecar's command and its description; for ``openai``, the same with ``--provider openai``."""
    grpc = ["--no-grpc"] if args.no_grpc else ["--grpc-port", "0"]
    translated = ["--provider", "openai"] if provider == "openai" else []
    std = ["--upstream", upstream_url, *translated, "--upstream-key", UPSTREAM_KEY, "--http-port", "0", *grpc]
    if args.sidecar_cmd:
        tmpl = args.sidecar_cmd
        has_upstream = "{upstream}" in tmpl
        argv = [
            part.replace("{python}", sys.executable).replace("{upstream}", upstream_url)
            for part in shlex.split(tmpl)
        ]
        return (argv + translated if has_upstream else argv + std), f"custom command: {tmpl}"
    if args.standin or not (REPO / "sidecar" / "__main__.py").exists():
        why = "--standin" if args.standin else "sidecar/__main__.py does not exist yet"
        return (
            _standin_argv() + std,
            f"STAND-IN proxy bench/_standin_proxy.py, uvicorn raw ASGI + aiohttp ({why})",
        )
    # The admin listener (metrics) on a free port; --no-metrics measures the sidecar without them.
    extra = ["--admin-port", "0", *(["--no-metrics"] if args.no_metrics else [])]
    desc = "sidecar (python -m sidecar" + (", metrics off)" if args.no_metrics else ", metrics on)")
    return [sys.executable, "-m", "sidecar", *std, *extra], desc


def _pinning(no_pin: bool) -> tuple[bool, int | None, int | None, str]:
    cpus = sorted(os.sched_getaffinity(0))
    if no_pin:
        return False, None, None, "not pinned (--no-pin)"
    if len(cpus) < 2:
        return False, None, None, f"not pinned (only {len(cpus)} CPU available)"
    if shutil.which("taskset") is None:
        return False, None, None, "not pinned (taskset not found)"
    return (
        True,
        cpus[0],
        cpus[1],
        f"proxy on CPU {cpus[0]}; fake upstream + load generator on CPU {cpus[1]}",
    )


def _fmt(v: float | None, metric: str) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.0f}" if metric.endswith("_per_s") else f"{v:.3f}"


def _fmt_value(s: dict[str, object]) -> str:
    v = s["value"]
    if not isinstance(v, float):
        return "n/a"
    return f"{v:.3f}" if s["kind"] == "ratio" else f"{v:+.3f} ms"


def _fmt_target(s: dict[str, object]) -> str:
    t = s["target"]
    if not isinstance(t, float):
        return "-"
    return f">= {t:g}" if s["kind"] == "ratio" else f"<= {t:g} ms"


def _pct(v: object) -> str:
    return f"{v:.0%}" if isinstance(v, float) else "n/a"


def render(summaries: list[dict[str, object]], header: list[str]) -> str:
    rows = [
        ("scenario", "metric", "direct", "via sidecar", "ratio / added", "target", "result", "CPU proxy/lg")
    ]
    for s in summaries:
        metric = str(s["metric"])
        rows.append(
            (
                str(s["label"]),
                METRIC_LABELS[metric],
                _fmt(s["direct"] if isinstance(s["direct"], float) else None, metric),
                _fmt(s["via"] if isinstance(s["via"], float) else None, metric),
                _fmt_value(s),
                _fmt_target(s),
                str(s["status"]),
                f"{_pct(s['proxy_cpu_util'])}/{_pct(s['loadgen_cpu_util_via'])}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4}
    out = list(header) + [""]
    for n, r in enumerate(rows):
        out.append(
            "  ".join(
                c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)
            ).rstrip()
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [(str(s["label"]), n) for s in summaries for n in s["notes"]]  # type: ignore[attr-defined]
    noisy = [
        f"{s['label']} {s['foreign_cpu_max']:.0%}"
        for s in summaries
        if isinstance(s["foreign_cpu_max"], float) and s["foreign_cpu_max"] > FOREIGN_LOAD_WARN
    ]
    if notes or noisy:
        out.append("")
        out.extend(f"note [{label}]: {n}" for label, n in notes)
    if noisy:
        out.append(
            "WARNING: other processes used CPU during the runs (max share of a core: "
            + ", ".join(noisy)
            + "); these numbers are noisy, rerun on a quiet machine"
        )
    return "\n".join(out)


def render_cancel(summaries: list[dict[str, object]], n: int) -> str:
    def ms(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else "n/a"

    rows = [("scenario", "client", "closed", "p50 ms", "p99 ms", "max ms", "result")]
    for s in summaries:
        rows.append(
            (
                str(s["label"]),
                str(s["request"]),
                f"{s['closed']}/{s['probes']}",
                ms(s["p50_ms"]),
                ms(s["p99_ms"]),
                ms(s["max_ms"]),
                str(s["status"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4, 5}
    out = [
        "",
        f"cancellation latency: upstream close - client close, ms ({n} sequential probes per row; "
        "direct baseline: none, 0 by definition):",
        "",
    ]
    for i, r in enumerate(rows):
        out.append(
            "  ".join(
                c.rjust(widths[j]) if j in right else c.ljust(widths[j]) for j, c in enumerate(r)
            ).rstrip()
        )
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [(str(s["label"]), n) for s in summaries for n in s["notes"]]  # type: ignore[attr-defined]
    noisy = [
        f"{s['label']} {s['foreign_cpu_max']:.0%}"
        for s in summaries
        if isinstance(s["foreign_cpu_max"], float) and s["foreign_cpu_max"] > FOREIGN_LOAD_WARN
    ]
    if notes or noisy:
        out.append("")
        out.extend(f"note [{label}]: {note}" for label, note in notes)
    if noisy:
        out.append(
            "WARNING: other processes used CPU during the probes (max share of a core: "
            + ", ".join(noisy)
            + "); scheduling delays show up in these latencies, rerun on a quiet machine"
        )
    return "\n".join(out)


async def _check(url: str, label: str, deltas: int) -> None:
    """One JSON and one SSE request with full event-name accounting; raises if anything is off."""
    j = await run_load(url, "json", 1, 1, 10.0)
    s = await run_load(url, "sse", 1, 1, 10.0, count_names=True)
    want = sse_event_count(deltas)
    problems = []
    if j.ok != 1:
        problems.append(f"JSON request: statuses {j.statuses}, errors {j.error_samples}")
    if s.ok != 1 or s.event_counts != {want: 1}:
        problems.append(
            f"SSE request: statuses {s.statuses}, events {s.event_counts} (want {want}), {s.error_samples}"
        )
    if problems:
        raise RuntimeError(f"sanity check via {label} failed: " + "; ".join(problems))


def translated_event_count(deltas: int) -> int:
    """Events in one answer the openai sidecar streams: the pass-through's minus ``ping`` (the
    translator sends one only after 10 s of upstream silence), and no content block without deltas."""
    return deltas + 5 if deltas else 3


async def _check_openai(url: str, deltas: int) -> None:
    """One JSON and one SSE request through the openai sidecar, every event name accounted for."""
    j = await run_load(url, "json", 1, 1, 10.0)
    s = await run_load(url, "sse", 1, 1, 10.0, count_names=True)
    want = {"message_start": 1, "message_delta": 1, "message_stop": 1}
    if deltas:
        want |= {"content_block_start": 1, "content_block_delta": deltas, "content_block_stop": 1}
    problems = []
    if j.ok != 1:
        problems.append(f"JSON request: statuses {j.statuses}, errors {j.error_samples}")
    if s.ok != 1 or s.event_names != want:
        problems.append(
            f"SSE request: statuses {s.statuses}, events {s.event_names} (want {want}), {s.error_samples}"
        )
    if problems:
        raise RuntimeError("sanity check via the openai sidecar failed: " + "; ".join(problems))


def translated_vs_passthrough(outcomes: list[ScenarioOutcome]) -> list[dict[str, object]]:
    """Per openai row: its via against the pass-through row's via, per repetition (medians)."""
    by_key = {oc.scenario.key: oc for oc in outcomes}
    rows: list[dict[str, object]] = []
    for oc in outcomes:
        s = oc.scenario
        if s.provider != "openai" or s.baseline not in by_key:
            continue
        passthrough = by_key[s.baseline]
        ratios: list[float] = []
        added: list[float] = []
        for p, t in zip(passthrough.via, oc.via, strict=False):  # the same repetition
            pv, tv = s.value(p.result), s.value(t.result)
            if pv is None or tv is None or pv <= 0:
                continue
            ratios.append(tv / pv)
            added.append(tv - pv)
        pvals = [v for v in (s.value(m.result) for m in passthrough.via) if v is not None]
        tvals = [v for v in (s.value(m.result) for m in oc.via) if v is not None]
        rows.append(
            {
                "scenario": s.key,
                "label": passthrough.scenario.label,
                "passthrough": passthrough.scenario.key,
                "metric": s.metric,
                "kind": s.kind,
                "passthrough_via": _median(pvals),
                "translated_via": _median(tvals),
                "ratio": _median(ratios),
                "added_ms": _median(added) if s.kind == "added_ms" else None,
                "per_repetition": ratios,
            }
        )
    return rows


def render_translated(rows: list[dict[str, object]]) -> str:
    rows_out = [("scenario", "metric", "pass-through", "translated", "translated / pass-through")]
    for r in rows:
        metric = str(r["metric"])
        ratio = r["ratio"]
        cell = f"{ratio:.3f}" if isinstance(ratio, float) else "n/a"
        if isinstance(r["added_ms"], float):
            cell += f" ({r['added_ms']:+.3f} ms)"
        rows_out.append(
            (
                str(r["label"]),
                METRIC_LABELS[metric],
                _fmt(_f(r["passthrough_via"]), metric),
                _fmt(_f(r["translated_via"]), metric),
                cell,
            )
        )
    widths = [max(len(r[i]) for r in rows_out) for i in range(len(rows_out[0]))]
    right = {2, 3}
    out = [
        "",
        "translated vs pass-through: openai via / anthropic via, per repetition (medians); "
        "< 1 for throughput or > 1 for latency = the translated path is slower:",
        "",
    ]
    for i, row in enumerate(rows_out):
        out.append(
            "  ".join(
                c.rjust(widths[j]) if j in right else c.ljust(widths[j]) for j, c in enumerate(row)
            ).rstrip()
        )
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _progress(rep: int, plan: Plan, label: str, which: str, r: LoadResult) -> None:
    print(
        f"  [{rep + 1}/{plan.repeat}] {label:<18} {which:<6} "
        f"{r.requests_per_s:>9,.0f} req/s"
        + (f" {r.events_per_s:>10,.0f} ev/s" if r.mode == "sse" else "")
        + f"  p50 {r.latency_ms.get('p50', float('nan')):.3f} ms"
        + (f"  TTFT p50 {r.ttft_ms.get('p50', float('nan')):.3f} ms" if r.mode == "sse" else "")
        + (f"  errors {r.errors} {r.error_samples[:1]}" if r.errors else ""),
        flush=True,
    )


@dataclass
class GrpcDoor:
    """The gRPC side of a run: the sidecar's gRPC address and the worker that loads it."""

    target: str | None = None
    worker: Child | None = None
    skipped: str | None = None  # why there are no gRPC measurements


async def _check_grpc(door: GrpcDoor, plan: Plan) -> str | None:
    """One unary call and one stream with event accounting through the gRPC door; a problem or None."""
    assert door.worker is not None and door.target is not None
    base: dict[str, object] = {"op": "load", "target": door.target, "connections": 1, "requests": 1}
    try:
        u = LoadResult.from_dict(
            await asyncio.to_thread(door.worker.command, {**base, "mode": "unary", "duration": 10.0}, 30.0)
        )
        st = LoadResult.from_dict(
            await asyncio.to_thread(
                door.worker.command, {**base, "mode": "stream", "duration": 10.0, "count_names": True}, 30.0
            )
        )
    except RuntimeError as exc:
        return str(exc)[:500]
    want = sse_event_count(plan.deltas)
    problems = []
    if u.ok != 1:
        problems.append(f"CreateMessage: statuses {u.statuses}, errors {u.error_samples}")
    if st.ok != 1 or st.event_counts != {want: 1}:
        problems.append(
            f"StreamMessage: statuses {st.statuses}, events {st.event_counts} (want {want}), {st.error_samples}"
        )
    return "sanity check via the gRPC door failed: " + "; ".join(problems) if problems else None


async def run_cancellations(
    plan: Plan, upstream: Child, upstream_url: str, proxy: Child, proxy_url: str, door: GrpcDoor
) -> list[CancelOutcome]:
    out: list[CancelOutcome] = []
    print(f"cancellation probes ({plan.cancel_n} per row, one at a time) ...", flush=True)
    for cs in CANCEL_SCENARIOS:
        if cs.door == "grpc" and door.skipped is not None:
            continue
        window = CpuWindow(plan, proxy, upstream, door.worker)
        result: CancelResult | None = None
        problem: str | None = None
        if cs.door == "http":
            result = await run_http_probes(proxy_url, cs.kind, plan.cancel_n, upstream_url)
        else:
            assert door.worker is not None
            cmd: dict[str, object] = {
                "op": "cancel",
                "target": door.target,
                "upstream": upstream_url,
                "kind": cs.kind,
                "n": plan.cancel_n,
            }
            budget = plan.cancel_n * (CLOSE_WAIT_S + FIRST_DELTA_TIMEOUT_S + 1.0) + 30.0
            try:
                result = CancelResult(**await asyncio.to_thread(door.worker.command, cmd, budget))
            except (RuntimeError, TypeError) as exc:
                problem = str(exc)[:500]
        cpu = window.close()
        oc = CancelOutcome(
            cs,
            result,
            problem,
            cpu.proxy / cpu.wall if cpu.proxy is not None else None,
            cpu.foreign_proxy_core,
            cpu.foreign_loadgen_core,
        )
        out.append(oc)
        pct = result.close_ms if result else {}
        print(
            f"  {cs.label:<30} {result.closed if result else 0}/{plan.cancel_n} closes"
            + "".join(f"  {k} {pct[k]:.3f} ms" for k in ("p50", "p99", "max") if k in pct)
            + (f"  missing {result.missing}" if result and result.missing else "")
            + (f"  errors {result.errors} {result.error_samples[:1]}" if result and result.errors else "")
            + (f"  {problem}" if problem else ""),
            flush=True,
        )
    return out


async def _warm_up(plan: Plan, urls: list[str], door: GrpcDoor | None = None) -> None:
    """A short load per mode on each HTTP target (and the gRPC door, when given and not skipped)."""
    if plan.warmup <= 0:
        return
    for url in urls:
        for mode in MODES:
            await run_load(url, mode, 32, plan.requests, plan.warmup)
    if door is not None and door.skipped is None and door.worker is not None and door.target is not None:
        warm = dataclasses.replace(plan, duration=plan.warmup)
        for mode in MODES:
            await grpc_load(door.worker, door.target, mode, 32, warm)


async def _switch(
    plan: Plan, sidecars: Sidecars, door: GrpcDoor, openai: OpenAIPath, provider: Provider
) -> bool:
    """Make ``provider``'s sidecar the running one; a fresh start is checked and warmed up.

    False when the openai sidecar cannot be used (``openai.skipped`` says why; its rows stop there).
    A pass-through sidecar that will not restart is a harness failure (RuntimeError).
    """
    if sidecars.current is not None and sidecars.provider == provider:
        return True
    if provider == "openai":
        try:
            await asyncio.to_thread(sidecars.start, "openai")
            await _check_openai(sidecars.url, plan.deltas)
        except (RuntimeError, OSError) as exc:
            openai.skipped = str(exc).split("\n")[0][:500]
            print(f"warning: no further openai measurements: {openai.skipped}", flush=True)
            await asyncio.to_thread(sidecars.stop)
            return False
        print(f"openai sidecar on {sidecars.url}, warming up ...", flush=True)
        await _warm_up(plan, [sidecars.url])
        return True
    proxy = await asyncio.to_thread(sidecars.start, "anthropic")
    await _check(sidecars.url, "sidecar", plan.deltas)
    if door.skipped is None and door.worker is not None:
        try:
            door.target = proxy.wait_for_line(
                GRPC_LINE, GRPC_LINE_TIMEOUT_S, "its gRPC listening line"
            ).group(1)
        except RuntimeError as exc:
            door.skipped = str(exc).split("\n")[0]
        if door.skipped is None:
            door.skipped = await _check_grpc(door, plan)
        if door.skipped is not None:
            print(f"warning: no further gRPC measurements: {door.skipped}", flush=True)
    print(f"sidecar restarted on {sidecars.url}, warming up ...", flush=True)
    await _warm_up(plan, [sidecars.url], door)
    return True


async def run_bench(
    plan: Plan, upstream: Child, upstream_url: str, sidecars: Sidecars, door: GrpcDoor, openai: OpenAIPath
) -> tuple[list[ScenarioOutcome], list[CancelOutcome]]:
    """Every repetition measures the pass-through sidecar (direct, via, gRPC) and the openai one.

    The pass-through sidecar is running on entry. One sidecar runs at a time: repetition r measures
    them in the order anthropic, openai (r even) or openai, anthropic (r odd), so there is one switch
    per repetition; the cancellation probes run in the last repetition, on the pass-through sidecar.
    """
    assert sidecars.provider == "anthropic"
    await _check(upstream_url, "direct", plan.deltas)
    await _check(sidecars.url, "sidecar", plan.deltas)
    if door.skipped is None:
        door.skipped = await _check_grpc(door, plan)
        if door.skipped is not None:
            print(f"warning: no gRPC measurements: {door.skipped}", flush=True)
    if plan.warmup > 0:
        print(f"warming up ({plan.warmup:.1f} s per target and mode) ...", flush=True)
    await _warm_up(plan, [upstream_url, sidecars.url], door)
    outcomes = [ScenarioOutcome(s) for s in SCENARIOS]
    grpc_outcomes = [ScenarioOutcome(s) for s in GRPC_SCENARIOS] if door.skipped is None else []
    openai_outcomes = [ScenarioOutcome(s) for s in OPENAI_SCENARIOS] if openai.skipped is None else []
    cancels: list[CancelOutcome] = []
    for rep in range(plan.repeat):
        phases: tuple[Provider, ...] = ("anthropic", "openai") if rep % 2 == 0 else ("openai", "anthropic")
        for phase in phases:
            if phase == "openai":
                if openai.skipped is not None or not await _switch(plan, sidecars, door, openai, "openai"):
                    continue
                proxy = sidecars.current
                assert proxy is not None
                for oc in openai_outcomes:
                    m = await measure(sidecars.url, oc.scenario, plan, proxy, upstream, True, door.worker)
                    oc.via.append(m)
                    _progress(rep, plan, oc.scenario.label, "via", m.result)
                continue
            await _switch(plan, sidecars, door, openai, "anthropic")
            proxy = sidecars.current
            assert proxy is not None
            for oc in outcomes:
                order = ("direct", "via") if rep % 2 == 0 else ("via", "direct")
                for which in order:
                    url = upstream_url if which == "direct" else sidecars.url
                    m = await measure(url, oc.scenario, plan, proxy, upstream, which == "via", door.worker)
                    (oc.direct if which == "direct" else oc.via).append(m)
                    _progress(rep, plan, oc.scenario.label, which, m.result)
            for oc in grpc_outcomes:
                if door.skipped is not None:  # the door failed after a restart: no further runs
                    break
                assert door.target is not None
                m = await measure(door.target, oc.scenario, plan, proxy, upstream, True, door.worker)
                oc.via.append(m)
                _progress(rep, plan, oc.scenario.label, "via", m.result)
            if rep == plan.repeat - 1:
                cancels = await run_cancellations(plan, upstream, upstream_url, proxy, sidecars.url, door)
    by_key = {oc.scenario.key: oc for oc in outcomes}
    for oc in grpc_outcomes + openai_outcomes:  # compared with the direct runs of the same repetitions
        assert oc.scenario.baseline is not None
        oc.direct = by_key[oc.scenario.baseline].direct
    return outcomes + openai_outcomes + grpc_outcomes, cancels


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs, one repetition (about a minute)")
    p.add_argument("--duration", type=float, help="seconds per measurement (default 5, quick 1.2)")
    p.add_argument(
        "--requests", type=int, help="at most this many requests per measurement (default 1,000,000)"
    )
    p.add_argument("--repeat", type=int, help="repetitions; medians are reported (default 2, quick 1)")
    p.add_argument(
        "--warmup", type=float, help="warm-up seconds per target and mode (default 1.5, quick 0.4)"
    )
    p.add_argument("--deltas", type=int, default=20, help="content_block_delta events per streamed answer")
    p.add_argument("--sidecar-cmd", help="command template for the proxy ({python}, {upstream} substituted)")
    p.add_argument(
        "--standin", action="store_true", help="measure bench/_standin_proxy.py instead of the sidecar"
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument(
        "--cancel-probes", type=int, help="sequential cancellation probes per row (default 50, quick 15)"
    )
    p.add_argument("--no-grpc", action="store_true", help="run the sidecar with --no-grpc; no gRPC rows")
    p.add_argument(
        "--no-metrics", action="store_true", help="run the sidecar with --no-metrics (telemetry off)"
    )
    p.add_argument(
        "--no-openai",
        action="store_true",
        help="skip the OpenAI-translated rows (no second sidecar with --provider openai)",
    )
    p.add_argument(
        "--no-failures",
        action="store_true",
        help="skip the failing-upstream rows (a sidecar with a retry policy, the fake failing 20%%)",
    )
    p.add_argument(
        "--no-admission",
        action="store_true",
        help="skip the admission-overhead rows (sidecars with client keys and limits, memory and Redis)",
    )
    p.add_argument(
        "--only",
        choices=["admission"],
        help="run only this scenario (the fake upstream and its sidecars; no other rows)",
    )
    p.add_argument(
        "--out", type=Path, default=RESULTS / "latest.json", help="where to write the JSON results"
    )
    args = p.parse_args(argv)
    args.duration = args.duration if args.duration is not None else (1.2 if args.quick else 5.0)
    args.requests = args.requests if args.requests is not None else 1_000_000
    args.repeat = args.repeat if args.repeat is not None else (1 if args.quick else 2)
    args.warmup = args.warmup if args.warmup is not None else (0.4 if args.quick else 1.5)
    args.cancel_probes = args.cancel_probes if args.cancel_probes is not None else (15 if args.quick else 50)
    if not 1 <= args.cancel_probes <= 1000:
        p.error("--cancel-probes must be in 1..1000")
    if not 0 < args.duration <= 600 or args.requests < 1 or not 1 <= args.repeat <= 20 or args.warmup < 0:
        p.error("need 0 < --duration <= 600, --requests >= 1, 1 <= --repeat <= 20, --warmup >= 0")
    if not 0 <= args.deltas <= 10_000:
        p.error("--deltas must be in 0..10000")
    if args.only == "admission" and args.no_admission:
        p.error("--only admission and --no-admission contradict each other")
    return args


def _start_grpc(args: argparse.Namespace, proxy: Child, standin: bool, taskset_u: list[str]) -> GrpcDoor:
    """Find the sidecar's gRPC address and start the gRPC load generator; say why not otherwise."""
    if args.no_grpc:
        return GrpcDoor(skipped="--no-grpc")
    if standin:
        return GrpcDoor(skipped="the stand-in proxy has no gRPC door")
    try:
        target = proxy.wait_for_line(GRPC_LINE, GRPC_LINE_TIMEOUT_S, "its gRPC listening line").group(1)
    except RuntimeError as exc:
        return GrpcDoor(skipped=str(exc).split("\n")[0])
    worker = Child(
        "gRPC load generator",
        [*taskset_u, sys.executable, "-m", "bench.grpc_loadgen", "--serve"],
        RESULTS / "grpc_loadgen.stderr.log",
        stdin_pipe=True,
    )
    door = GrpcDoor(target=target, worker=worker)
    try:
        worker.wait_for_line(GRPC_READY_LINE, STARTUP_TIMEOUT_S, "its ready line")
    except RuntimeError as exc:
        door.skipped = str(exc).split("\n")[0]
    return door


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: through the finally below, which stops the subprocesses.
    signal.signal(signal.SIGTERM, _on_sigterm)
    pin, proxy_cpu, loadgen_cpu, pin_desc = _pinning(args.no_pin)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    original_affinity = os.sched_getaffinity(0)
    upstream: Child | None = None
    sidecars: Sidecars | None = None
    door = GrpcDoor()
    openai = OpenAIPath()
    failing = FailurePhase()
    admission = AdmissionPhase()
    only = f"--only {args.only}" if args.only else None  # why the other rows are skipped
    try:
        if pin and loadgen_cpu is not None:
            os.sched_setaffinity(0, {loadgen_cpu})  # the load generator shares the upstream's core
        taskset_u = ["taskset", "-c", str(loadgen_cpu)] if pin else []
        taskset_p = ["taskset", "-c", str(proxy_cpu)] if pin else []
        upstream = Child(
            "fake upstream",
            [
                *taskset_u,
                sys.executable,
                "-m",
                "bench.fake_upstream",
                "--port",
                "0",
                "--deltas",
                str(args.deltas),
            ],
            RESULTS / "upstream.stderr.log",
        )
        upstream_url = upstream.wait_for_line(UPSTREAM_LINE, STARTUP_TIMEOUT_S).group(1)
        sidecar_argv, sidecar_desc = _sidecar_argv(args, upstream_url)
        standin = "bench._standin_proxy" in " ".join(sidecar_argv)
        openai_argv: list[str] | None = None
        if only:
            openai.skipped = only
        elif args.no_openai:
            openai.skipped = "--no-openai"
        elif standin:
            openai.skipped = "the stand-in proxy has no OpenAI path"
        else:
            openai_argv = _sidecar_argv(args, upstream_url, "openai")[0]
        failing.skipped = only or _failures_skipped(args, standin)
        admission.skipped = _admission_skipped(args, standin)
        admission.duration = min(args.duration, ADMISSION_QUICK_DURATION_S) if args.quick else args.duration
        admission.repeat = args.repeat
        failing.duration = min(args.duration, QUICK_DURATION_S) if args.quick else args.duration
        argvs: dict[Provider, list[str]] = {"anthropic": sidecar_argv}
        if openai_argv is not None:
            argvs["openai"] = openai_argv
        sidecars = Sidecars(argvs, taskset_p)
        if only:
            door = GrpcDoor(skipped=only)
        else:
            door = _start_grpc(args, sidecars.start("anthropic"), standin, taskset_u)
        plan = Plan(
            args.duration,
            args.requests,
            args.repeat,
            args.warmup,
            args.deltas,
            pin,
            proxy_cpu,
            loadgen_cpu,
            sidecar_argv,
            sidecar_desc,
            args.cancel_probes,
            openai_argv,
        )
        grpc_desc = (
            f"{door.target} (bench/grpc_loadgen.py: grpc.aio, one channel, its own process"
            + (f" on CPU {loadgen_cpu})" if pin else ")")
            if door.skipped is None
            else f"skipped ({door.skipped})"
        )
        header = [
            "messages-sidecar benchmark",
            f"via:      {sidecar_desc}",
            f"command:  {shlex.join([*taskset_p, *sidecar_argv])}" + (f" (not run: {only})" if only else ""),
            f"pinning:  {pin_desc}",
            f"runs:     {plan.duration:g} s or {plan.requests:,} requests per measurement, {plan.repeat} "
            f"repetition(s) (medians), SSE answers of {sse_event_count(plan.deltas)} events",
            f"gRPC:     {grpc_desc}",
            "openai:   "
            + (
                f"{shlex.join([*taskset_p, *openai_argv])} (a second sidecar; one sidecar runs at a time, "
                f"SSE answers of {translated_event_count(plan.deltas)} events)"
                if openai_argv is not None
                else f"skipped ({openai.skipped})"
            ),
            f"cancel:   {plan.cancel_n} sequential probes per row; times are time.monotonic() "
            "(CLOCK_MONOTONIC on Linux: one clock for all processes)",
            "failing:  "
            + (
                f"python -m sidecar --config (a {policy_desc()}); the fake fails every {FAIL_EVERY}th attempt, "
                f"{failing.duration:g} s per run"
                if failing.skipped is None
                else f"skipped ({failing.skipped})"
            ),
            "admission: "
            + (
                f"python -m sidecar --config: admission off / memory / redis (redis-server pinned to the load "
                f"generator's CPU), {admission.duration:g} s per run"
                if admission.skipped is None
                else f"skipped ({admission.skipped})"
            ),
        ]
        print("\n".join(header), flush=True)
        install_uvloop()
        outcomes: list[ScenarioOutcome] = []
        cancels: list[CancelOutcome] = []
        if not only:
            outcomes, cancels = asyncio.run(run_bench(plan, upstream, upstream_url, sidecars, door, openai))
        sidecars.stop()
        if failing.skipped is None:
            run_failure_phase(args, plan, failing, upstream_url, taskset_p)
        if admission.skipped is None:
            run_admission_phase(args, plan, admission, upstream_url, taskset_p)
        for problem in sidecars.problems:
            print(f"warning: {problem}", flush=True)
    except (RuntimeError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if door.worker is not None:
            door.worker.stop()
        if sidecars is not None:
            sidecars.stop()
        if upstream is not None:
            upstream.stop()
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, original_affinity)

    summaries = [oc.summary() for oc in outcomes]
    translated = translated_vs_passthrough(outcomes)
    cancel_summaries = [oc.summary() for oc in cancels]
    failing_rows = [row for oc in failing.outcomes for row in oc.rows()]
    direct_ceiling = {s["scenario"]: s["direct"] for s in summaries}
    footer = [
        "",
        "load generator ceiling (direct to the fake upstream, sharing one core with it): "
        f"JSON c=32 {_fmt(_f(direct_ceiling.get('json_c32')), 'requests_per_s')} req/s, "
        f"SSE c=32 {_fmt(_f(direct_ceiling.get('sse_c32')), 'events_per_s')} events/s, "
        f"JSON c=1 p50 {_fmt(_f(direct_ceiling.get('json_c1')), 'latency_p50_ms')} ms, "
        f"SSE c=1 TTFT p50 {_fmt(_f(direct_ceiling.get('sse_c1')), 'ttft_p50_ms')} ms",
        "ratio = via/direct in the same run (near 1.0 = load generator-bound); added = via - direct (p50). "
        "CPU proxy/lg = sidecar and load generator CPU during the via run (1 core = 100%).",
        "gRPC rows: via = the sidecar's gRPC door (unary = CreateMessage, stream = StreamMessage, c = calls in "
        "flight on one channel), direct = the direct HTTP run of the matching JSON/SSE row; the Python gRPC "
        "client's own cost is part of the gap.",
        "targets are informational: the exit code is 0 whether they pass or miss.",
    ]
    if openai.skipped is None or any(s["provider"] == "openai" for s in summaries):
        footer.insert(
            4,
            "openai rows: via = a second sidecar with --provider openai translating to the fake's "
            "/v1/chat/completions (same flags and CPU, never running alongside the first), direct = the direct "
            "run of the matching row in the same repetition; SSE c=32 (openai) compares streams/s, as its "
            f"streams carry {translated_event_count(plan.deltas)} events (no ping) against "
            f"{sse_event_count(plan.deltas)}, the same {plan.deltas} content deltas.",
        )
    if openai.skipped is not None:
        footer.append(f"openai rows skipped: {openai.skipped}")
    if door.skipped is not None:
        footer.append(f"gRPC rows and gRPC cancellation rows skipped: {door.skipped}")
    if only:
        print(f"\nmain, cancellation and failing-upstream rows: skipped ({only})", flush=True)
    else:
        print(
            render(summaries, ["", "results (medians over repetitions):"])
            + "\n"
            + (render_translated(translated) + "\n" if translated else "")
            + render_cancel(cancel_summaries, plan.cancel_n)
            + "\n"
            + (
                render_failures(failing_rows, failing.duration, plan.repeat)
                if failing_rows
                else f"\nfailing upstream: skipped ({failing.skipped})"
            )
            + "\n"
            + "\n".join(footer),
            flush=True,
        )
    print(render_admission(admission), flush=True)
    doc = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sidecar": sidecar_desc,
        "sidecar_argv": plan.sidecar_argv,
        "standin": "bench._standin_proxy" in " ".join(plan.sidecar_argv),
        "pinning": {
            "pinned": pin,
            "proxy_cpu": proxy_cpu,
            "loadgen_and_upstream_cpu": loadgen_cpu,
            "desc": pin_desc,
        },
        "config": {
            "duration_s": plan.duration,
            "max_requests": plan.requests,
            "repeat": plan.repeat,
            "warmup_s": plan.warmup,
            "sse_deltas": plan.deltas,
            "sse_events_per_answer": sse_event_count(plan.deltas),
            "cancel_probes": plan.cancel_n,
            "cancel_before_wait_ms": BEFORE_WAIT_S * 1000,
            "cancel_close_wait_s": CLOSE_WAIT_S,
            "only": args.only,
        },
        "grpc": {"target": door.target, "skipped": door.skipped},
        "openai": {
            "sidecar_argv": plan.openai_argv,
            "skipped": openai.skipped,
            "sse_events_per_answer": translated_event_count(plan.deltas),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "wall_s": round(time.monotonic() - started, 1),
        "scenarios": summaries,
        "translated_vs_passthrough": translated,
        "cancellation": {
            "metric": "upstream close - client close, ms",
            "clock": "time.monotonic() in both processes: CLOCK_MONOTONIC on Linux, shared machine-wide",
            "direct_baseline": "none: without a proxy there is nothing to close, 0 by definition",
            "rows": cancel_summaries,
        },
        "failing_upstream": {
            "skipped": failing.skipped,
            "sidecar_argv": failing.argv,
            "policy": policy_desc(),
            "config_yaml": failing.config,
            "fail_every": FAIL_EVERY,
            "duration_s": failing.duration,
            "repeat": plan.repeat,
            "scenarios": [
                {
                    "key": s.key,
                    "label": s.label,
                    "mode": s.mode,
                    "connections": s.connections,
                    "models": s.models,
                }
                for s in FAIL_SCENARIOS
            ],
            "direct_check": failing.direct,
            "rows": failing_rows,
        },
        "admission_overhead": admission.to_dict(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {args.out} ({doc['wall_s']} s)")
    return 0


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _f(v: object) -> float | None:
    return v if isinstance(v, float) else None


if __name__ == "__main__":
    sys.exit(main())
