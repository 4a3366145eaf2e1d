"""``python -m bench``: measure the sidecar against a direct call to a fake upstream, in one run.

Starts the fake upstream (``bench.fake_upstream``) and the sidecar as subprocesses, then for each
scenario measures direct-to-upstream and through-the-sidecar back to back, and reports the ratio
(throughput) or the added milliseconds (latency), as perf-facts.md does:

- JSON c=32: requests/s ratio        (target >= 0.12)
- JSON c=1:  added p50 latency, ms   (target <= 0.8 ms)
- SSE c=32:  events/s ratio          (target >= 0.35)
- SSE c=1:   added p50 time to first content delta, ms (informational)

With two or more CPUs and ``taskset``, the proxy is pinned to the first CPU and the fake upstream and
this process (the load generator) to the second: the proxy has a core to itself, and the direct
numbers are the load generator's own ceiling. A ratio near 1.0 means that ceiling, not the proxy,
is the limit.

The sidecar command defaults to ``python -m sidecar --upstream URL --upstream-key bench-key
--http-port 0 --no-grpc``; while ``sidecar/__main__.py`` does not exist, or with ``--standin``, the
stand-in proxy ``bench/_standin_proxy.py`` is used. ``--sidecar-cmd`` overrides the command: a
template where ``{python}`` is this interpreter and ``{upstream}`` the upstream URL; without
``{upstream}`` the standard flags are appended. The command must print
``sidecar http listening on http://HOST:PORT``.

Results go to stdout (a table) and to ``bench/results/latest.json``. The exit code is 0 even when a
target is missed; it is 1 only when the harness itself could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from bench.fake_upstream import install_uvloop, sse_event_count
from bench.loadgen import LoadResult, Mode, run_load

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
UPSTREAM_KEY = "bench-key"
SIDECAR_LINE = re.compile(r"sidecar http listening on (http://[\w.\-\[\]:]+:(\d+))")
UPSTREAM_LINE = re.compile(r"fake upstream listening on (http://[\w.\-\[\]:]+:(\d+))")
STARTUP_TIMEOUT_S = 30.0
FOREIGN_LOAD_WARN = 0.15  # other processes' CPU (in cores) above which a result is called noisy
LOADGEN_BOUND_RATIO = 0.85
MODES: tuple[Mode, ...] = ("json", "sse")  # at or above this, the load generator (not the proxy) is the limit


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    mode: Mode
    connections: int
    metric: str  # what is compared
    kind: Literal["ratio", "added_ms"]
    target: float | None  # ratio >= target, or added ms <= target

    def value(self, r: LoadResult) -> float | None:
        if self.metric == "requests_per_s":
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
METRIC_LABELS = {
    "requests_per_s": "requests/s",
    "events_per_s": "events/s",
    "latency_p50_ms": "p50 latency ms",
    "ttft_p50_ms": "p50 TTFT ms",
}


# -- subprocesses ----------------------------------------------------------------------------------
class Child:
    """A subprocess in its own process group whose stdout is drained by a thread."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.lines: deque[str] = deque(maxlen=50)
        self._first: dict[str, str] = {}
        self._seen = threading.Condition()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._log: IO[bytes] = open(log_path, "wb")  # closed in stop()
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
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

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
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
        what = (
            f"exited with code {code} before printing"
            if code is not None
            else f"did not print within {timeout:.0f} s"
        )
        raise RuntimeError(
            f"{self.name} {what} its listening line; command: {shlex.join(self.argv)}\n"
            f"stdout tail: {list(self.lines)[-5:]}\nstderr tail: {self.stderr_tail()}"
        )

    def stderr_tail(self, n: int = 2000) -> str:
        with contextlib.suppress(OSError):
            self._log.flush()
            data = self.log_path.read_bytes()
            return data[-n:].decode("utf-8", "replace")
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
            "loadgen_cpu_util_via": _median([m.result.loadgen_cpu_util for m in self.via]),
            "loadgen_cpu_util_direct": _median([m.result.loadgen_cpu_util for m in self.direct]),
            "runs": {
                "direct": [m.result.to_dict() | _cpu(m) for m in self.direct],
                "via": [m.result.to_dict() | _cpu(m) for m in self.via],
            },
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


async def measure(
    url: str,
    scenario: Scenario,
    plan: Plan,
    proxy: Child,
    upstream: Child,
    via: bool,
) -> Measurement:
    p0, u0, s0, b0 = proxy.cpu_seconds(), upstream.cpu_seconds(), time.process_time(), _cpu_busy()
    t0 = time.perf_counter()
    gc.collect()
    gc.disable()
    try:
        result = await run_load(url, scenario.mode, scenario.connections, plan.requests, plan.duration)
    finally:
        gc.enable()
    wall = time.perf_counter() - t0
    p1, u1, s1, b1 = proxy.cpu_seconds(), upstream.cpu_seconds(), time.process_time(), _cpu_busy()
    pcpu = p1 - p0 if p0 is not None and p1 is not None else None
    ucpu = u1 - u0 if u0 is not None and u1 is not None else None
    m = Measurement(
        result,
        pcpu / wall if pcpu is not None and via else None,
        ucpu / wall if ucpu is not None else None,
    )
    if pcpu is None or ucpu is None:
        return m

    def busy(key: str) -> float | None:
        return b1[key] - b0[key] if key in b0 and key in b1 else None

    own_lg = ucpu + (s1 - s0)
    if plan.pin:
        bp, bl = busy(f"cpu{plan.proxy_cpu}"), busy(f"cpu{plan.loadgen_cpu}")
        if bp is not None and bl is not None:
            m.foreign_proxy_core = max(0.0, (bp - pcpu) / wall)
            m.foreign_loadgen_core = max(0.0, (bl - own_lg) / wall)
    else:
        b = busy("cpu")
        if b is not None:
            m.foreign_proxy_core = max(0.0, (b - pcpu - own_lg) / wall)
    return m


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


def _standin_argv() -> list[str]:
    return [sys.executable, "-m", "bench._standin_proxy"]


def _sidecar_argv(args: argparse.Namespace, upstream_url: str) -> tuple[list[str], str]:
    std = ["--upstream", upstream_url, "--upstream-key", UPSTREAM_KEY, "--http-port", "0", "--no-grpc"]
    if args.sidecar_cmd:
        tmpl = args.sidecar_cmd
        has_upstream = "{upstream}" in tmpl
        argv = [
            part.replace("{python}", sys.executable).replace("{upstream}", upstream_url)
            for part in shlex.split(tmpl)
        ]
        return (argv if has_upstream else argv + std), f"custom command: {tmpl}"
    if args.standin or not (REPO / "sidecar" / "__main__.py").exists():
        why = "--standin" if args.standin else "sidecar/__main__.py does not exist yet"
        return (
            _standin_argv() + std,
            f"STAND-IN proxy bench/_standin_proxy.py, uvicorn raw ASGI + aiohttp ({why})",
        )
    return [sys.executable, "-m", "sidecar", *std], "sidecar (python -m sidecar)"


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


async def run_bench(
    plan: Plan, upstream: Child, upstream_url: str, proxy: Child, proxy_url: str
) -> list[ScenarioOutcome]:
    await _check(upstream_url, "direct", plan.deltas)
    await _check(proxy_url, "sidecar", plan.deltas)
    if plan.warmup > 0:
        print(f"warming up ({plan.warmup:.1f} s per target and mode) ...", flush=True)
        for url in (upstream_url, proxy_url):
            for mode in MODES:
                await run_load(url, mode, 32, plan.requests, plan.warmup)
    outcomes = [ScenarioOutcome(s) for s in SCENARIOS]
    for rep in range(plan.repeat):
        for oc in outcomes:
            order = ("direct", "via") if rep % 2 == 0 else ("via", "direct")
            for which in order:
                url = upstream_url if which == "direct" else proxy_url
                m = await measure(url, oc.scenario, plan, proxy, upstream, which == "via")
                (oc.direct if which == "direct" else oc.via).append(m)
                r = m.result
                print(
                    f"  [{rep + 1}/{plan.repeat}] {oc.scenario.label:<9} {which:<6} "
                    f"{r.requests_per_s:>9,.0f} req/s"
                    + (f" {r.events_per_s:>10,.0f} ev/s" if r.mode == "sse" else "")
                    + f"  p50 {r.latency_ms.get('p50', float('nan')):.3f} ms"
                    + (f"  TTFT p50 {r.ttft_ms.get('p50', float('nan')):.3f} ms" if r.mode == "sse" else "")
                    + (f"  errors {r.errors}" if r.errors else ""),
                    flush=True,
                )
    return outcomes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs, one repetition (under 20 s)")
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
        "--out", type=Path, default=RESULTS / "latest.json", help="where to write the JSON results"
    )
    args = p.parse_args(argv)
    args.duration = args.duration if args.duration is not None else (1.2 if args.quick else 5.0)
    args.requests = args.requests if args.requests is not None else 1_000_000
    args.repeat = args.repeat if args.repeat is not None else (1 if args.quick else 2)
    args.warmup = args.warmup if args.warmup is not None else (0.4 if args.quick else 1.5)
    if not 0 < args.duration <= 600 or args.requests < 1 or not 1 <= args.repeat <= 20 or args.warmup < 0:
        p.error("need 0 < --duration <= 600, --requests >= 1, 1 <= --repeat <= 20, --warmup >= 0")
    if not 0 <= args.deltas <= 10_000:
        p.error("--deltas must be in 0..10000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: through the finally below, which stops the subprocesses.
    signal.signal(signal.SIGTERM, _on_sigterm)
    pin, proxy_cpu, loadgen_cpu, pin_desc = _pinning(args.no_pin)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    original_affinity = os.sched_getaffinity(0)
    upstream: Child | None = None
    proxy: Child | None = None
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
        proxy = Child("sidecar", [*taskset_p, *sidecar_argv], RESULTS / "sidecar.stderr.log")
        proxy_url = proxy.wait_for_line(SIDECAR_LINE, STARTUP_TIMEOUT_S).group(1)
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
        )
        header = [
            "messages-sidecar benchmark",
            f"via:      {sidecar_desc}",
            f"command:  {shlex.join(proxy.argv)}",
            f"pinning:  {pin_desc}",
            f"runs:     {plan.duration:g} s or {plan.requests:,} requests per measurement, {plan.repeat} "
            f"repetition(s) (medians), SSE answers of {sse_event_count(plan.deltas)} events",
        ]
        print("\n".join(header), flush=True)
        install_uvloop()
        outcomes = asyncio.run(run_bench(plan, upstream, upstream_url, proxy, proxy_url))
        if proxy.proc.poll() is not None:
            print(f"warning: the sidecar exited during the run (code {proxy.proc.returncode})", flush=True)
    except (RuntimeError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        for child in (proxy, upstream):
            if child is not None:
                child.stop()
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, original_affinity)

    summaries = [oc.summary() for oc in outcomes]
    direct_ceiling = {s["scenario"]: s["direct"] for s in summaries}
    footer = [
        "",
        "load generator ceiling (direct to the fake upstream, sharing one core with it): "
        f"JSON c=32 {_fmt(_f(direct_ceiling['json_c32']), 'requests_per_s')} req/s, "
        f"SSE c=32 {_fmt(_f(direct_ceiling['sse_c32']), 'events_per_s')} events/s, "
        f"JSON c=1 p50 {_fmt(_f(direct_ceiling['json_c1']), 'latency_p50_ms')} ms, "
        f"SSE c=1 TTFT p50 {_fmt(_f(direct_ceiling['sse_c1']), 'ttft_p50_ms')} ms",
        "ratio = via/direct in the same run (near 1.0 = load generator-bound); added = via - direct (p50). "
        "CPU proxy/lg = sidecar and load generator CPU during the via run (1 core = 100%).",
        "targets are informational: the exit code is 0 whether they pass or miss.",
    ]
    print(
        render(summaries, ["", "results (medians over repetitions):"]) + "\n" + "\n".join(footer), flush=True
    )
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
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "wall_s": round(time.monotonic() - started, 1),
        "scenarios": summaries,
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
