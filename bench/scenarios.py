"""What ``python -m bench`` measures, and the runs that measure it.

- The scenarios: the four pass-through HTTP rows (``SCENARIOS``, with their targets), the same
  through the OpenAI-translated sidecar (``OPENAI_SCENARIOS``) and through the gRPC door
  (``GRPC_SCENARIOS``), and the cancellation rows (``CANCEL_SCENARIOS``).
- ``Plan``: how long, how many, how often, on which CPUs, with which sidecar commands.
- The runs: ``measure`` (one load run, HTTP in this process or gRPC through the worker, inside a
  ``CpuWindow``), the sanity checks and warm-ups, ``run_bench`` (every repetition: direct and via the
  pass-through sidecar, gRPC, nginx, the stand-in proxy, openai, one proxy at a time, and the
  cancellation probes in the last one), and the failing-upstream and admission phases
  (``bench.failing``, ``bench.admission``) with their sidecars.
- The raw results (``Measurement``, ``ScenarioOutcome``, ``CancelOutcome``); ``bench.report`` turns
  them into ratios, tables and JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bench.admission import AdmissionPhase, run_admission
from bench.cancel import CLOSE_WAIT_S, FIRST_DELTA_TIMEOUT_S, CancelKind, CancelResult, run_http_probes
from bench.failing import FailOutcome, policy_config, run_failures
from bench.fake_upstream import sse_event_count
from bench.loadgen import LoadResult, Mode, run_load
from bench.processes import (
    GRPC_LINE,
    GRPC_LINE_TIMEOUT_S,
    PROXY_LABELS,
    RESULTS,
    SIDECAR_LINE,
    STARTUP_TIMEOUT_S,
    Child,
    CpuWindow,
    GrpcDoor,
    Provider,
    Proxies,
    ProxyName,
    spawn,
    taskset,
)

MODES: tuple[Mode, ...] = ("json", "sse")


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


def translated_event_count(deltas: int) -> int:
    """Events in one answer the openai sidecar streams: the pass-through's minus ``ping`` (the
    translator sends one only after 10 s of upstream silence), and no content block without deltas."""
    return deltas + 5 if deltas else 3


@dataclass
class Plan:
    """How long, how many, how often, on which CPUs, with which sidecar commands."""

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


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Measurement:
    result: LoadResult
    proxy_cpu_util: float | None  # proxy process CPU / wall (runs through a proxy only)
    upstream_cpu_util: float | None
    # CPU used by processes other than ours, in cores: on the proxy's core and on the load
    # generator's core when pinned, else (unpinned) all of it under "proxy_core".
    foreign_proxy_core: float | None = None
    foreign_loadgen_core: float | None = None
    proxy_cpu_s: float | None = None  # the proxy's CPU seconds (its children's too) during the run

    def cpu_us_per_request(self) -> float | None:
        """The proxy's CPU time per completed request, microseconds."""
        if self.proxy_cpu_s is None or not self.result.completed:
            return None
        return self.proxy_cpu_s / self.result.completed * 1e6

    def cpu_us_per_event(self) -> float | None:
        """The proxy's CPU time per SSE event received, microseconds (SSE runs only)."""
        if self.proxy_cpu_s is None or not self.result.events:
            return None
        return self.proxy_cpu_s / self.result.events * 1e6


@dataclass
class ScenarioOutcome:
    """One row's runs, one per repetition each: direct, via the sidecar (the row's door and provider),
    and, for the pass-through HTTP rows, via nginx and via the stand-in proxy. gRPC and openai rows
    share their baseline row's direct and nginx runs."""

    scenario: Scenario
    direct: list[Measurement] = field(default_factory=list)
    via: list[Measurement] = field(default_factory=list)
    nginx: list[Measurement] = field(default_factory=list)
    standin: list[Measurement] = field(default_factory=list)


@dataclass
class CancelOutcome:
    scenario: CancelScenario
    result: CancelResult | None
    problem: str | None = None  # why there is no result
    proxy_cpu_util: float | None = None
    foreign_proxy_core: float | None = None
    foreign_loadgen_core: float | None = None


# -- measurement -----------------------------------------------------------------------------------
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
        cpu.proxy if via else None,
    )


# -- sanity checks ---------------------------------------------------------------------------------
HTTP_REQUESTS = ("JSON request", "SSE request")  # what the sanity checks' messages call them


def _problems(
    answer: LoadResult,
    stream: LoadResult,
    events: object,
    want: object,
    events_ok: bool,
    names: tuple[str, str],
) -> list[str]:
    """What a sanity check found wrong: ``answer`` must be one success, ``stream`` one success whose
    ``events`` are as wanted (``events_ok``); ``names`` are what the messages call the two requests."""
    problems = []
    if answer.ok != 1:
        problems.append(f"{names[0]}: statuses {answer.statuses}, errors {answer.error_samples}")
    if stream.ok != 1 or not events_ok:
        problems.append(
            f"{names[1]}: statuses {stream.statuses}, events {events} (want {want}), {stream.error_samples}"
        )
    return problems


async def _one_of_each(url: str) -> tuple[LoadResult, LoadResult]:
    """One JSON request, then one SSE request with every event name counted."""
    j = await run_load(url, "json", 1, 1, 10.0)
    s = await run_load(url, "sse", 1, 1, 10.0, count_names=True)
    return j, s


async def _check(url: str, label: str, deltas: int) -> None:
    """One JSON and one SSE request with full event-name accounting; raises if anything is off."""
    j, s = await _one_of_each(url)
    want = sse_event_count(deltas)
    problems = _problems(j, s, s.event_counts, want, s.event_counts == {want: 1}, HTTP_REQUESTS)
    if problems:
        raise RuntimeError(f"sanity check via {label} failed: " + "; ".join(problems))


async def _check_openai(url: str, deltas: int) -> None:
    """One JSON and one SSE request through the openai sidecar, every event name accounted for."""
    j, s = await _one_of_each(url)
    want = {"message_start": 1, "message_delta": 1, "message_stop": 1}
    if deltas:
        want |= {"content_block_start": 1, "content_block_delta": deltas, "content_block_stop": 1}
    problems = _problems(j, s, s.event_names, want, s.event_names == want, HTTP_REQUESTS)
    if problems:
        raise RuntimeError("sanity check via the openai sidecar failed: " + "; ".join(problems))


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
    problems = _problems(
        u, st, st.event_counts, want, st.event_counts == {want: 1}, ("CreateMessage", "StreamMessage")
    )
    return "sanity check via the gRPC door failed: " + "; ".join(problems) if problems else None


def _progress(rep: int, plan: Plan, label: str, which: str, r: LoadResult) -> None:
    print(
        f"  [{rep + 1}/{plan.repeat}] {label:<18} {which:<8} "
        f"{r.requests_per_s:>9,.0f} req/s"
        + (f" {r.events_per_s:>10,.0f} ev/s" if r.mode == "sse" else "")
        + f"  p50 {r.latency_ms.get('p50', float('nan')):.3f} ms"
        + (f"  TTFT p50 {r.ttft_ms.get('p50', float('nan')):.3f} ms" if r.mode == "sse" else "")
        + (f"  errors {r.errors} {r.error_samples[:1]}" if r.errors else ""),
        flush=True,
    )


# -- the main rows and the cancellation probes -----------------------------------------------------
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


@dataclass
class ExtraProxy:
    """A proxy measured beside the pass-through sidecar (nginx, the stand-in, the openai sidecar):
    skipped (and why) or measured."""

    skipped: str | None = None
    desc: str = ""  # what runs, for the header
    argv: list[str] | None = None
    config: str = ""  # nginx: the config of its last start


# The order of the proxies in even repetitions (odd ones reverse it); the pass-through sidecar's phase
# also runs the direct, gRPC and cancellation measurements.
PHASES: tuple[ProxyName, ...] = ("anthropic", "nginx", "standin", "openai")


async def _switch(
    plan: Plan, proxies: Proxies, door: GrpcDoor, extras: dict[ProxyName, ExtraProxy], name: ProxyName
) -> bool:
    """Make ``name``'s proxy the running one; a fresh start is checked and warmed up.

    False when an extra proxy cannot be used (``extras[name].skipped`` says why; its rows stop there).
    A pass-through sidecar that will not restart is a harness failure (RuntimeError).
    """
    if proxies.current is not None and proxies.name == name:
        return True
    label = PROXY_LABELS[name]
    if name != "anthropic":
        try:
            await asyncio.to_thread(proxies.start, name)
            if name == "openai":
                await _check_openai(proxies.url, plan.deltas)
            else:
                await _check(proxies.url, label, plan.deltas)
        except (RuntimeError, OSError) as exc:
            extras[name].skipped = str(exc).split("\n")[0][:500]
            print(f"warning: no further {label} measurements: {extras[name].skipped}", flush=True)
            await asyncio.to_thread(proxies.stop)
            return False
        print(f"{label} on {proxies.url}, warming up ...", flush=True)
        await _warm_up(plan, [proxies.url])
        return True
    proxy = await asyncio.to_thread(proxies.start, "anthropic")
    await _check(proxies.url, "sidecar", plan.deltas)
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
    print(f"sidecar restarted on {proxies.url}, warming up ...", flush=True)
    await _warm_up(plan, [proxies.url], door)
    return True


async def run_bench(
    plan: Plan,
    upstream: Child,
    upstream_url: str,
    proxies: Proxies,
    door: GrpcDoor,
    extras: dict[ProxyName, ExtraProxy],
) -> tuple[list[ScenarioOutcome], list[CancelOutcome]]:
    """Every repetition measures the pass-through sidecar (with the direct runs, gRPC), nginx, the
    stand-in proxy and the openai sidecar, each extra one unless ``extras`` says it is skipped.

    The pass-through sidecar is running on entry. One proxy runs at a time, each pinned to the proxy's
    CPU: repetition r measures them in ``PHASES`` order (r even) or the reverse (r odd), so the proxy
    running at the end of one repetition starts the next; the cancellation probes run in the last
    repetition, on the pass-through sidecar.
    """
    assert proxies.name == "anthropic"
    await _check(upstream_url, "direct", plan.deltas)
    await _check(proxies.url, "sidecar", plan.deltas)
    if door.skipped is None:
        door.skipped = await _check_grpc(door, plan)
        if door.skipped is not None:
            print(f"warning: no gRPC measurements: {door.skipped}", flush=True)
    if plan.warmup > 0:
        print(f"warming up ({plan.warmup:.1f} s per target and mode) ...", flush=True)
    await _warm_up(plan, [upstream_url, proxies.url], door)
    outcomes = [ScenarioOutcome(s) for s in SCENARIOS]
    grpc_outcomes = [ScenarioOutcome(s) for s in GRPC_SCENARIOS] if door.skipped is None else []
    openai_outcomes = (
        [ScenarioOutcome(s) for s in OPENAI_SCENARIOS] if extras["openai"].skipped is None else []
    )
    cancels: list[CancelOutcome] = []
    for rep in range(plan.repeat):
        for phase in PHASES if rep % 2 == 0 else PHASES[::-1]:
            if phase != "anthropic":
                if extras[phase].skipped is not None or not await _switch(plan, proxies, door, extras, phase):
                    continue
                proxy = proxies.current
                assert proxy is not None
                for oc in openai_outcomes if phase == "openai" else outcomes:
                    m = await measure(proxies.url, oc.scenario, plan, proxy, upstream, True, door.worker)
                    (oc.nginx if phase == "nginx" else oc.standin if phase == "standin" else oc.via).append(m)
                    _progress(rep, plan, oc.scenario.label, PROXY_LABELS[phase].split()[0], m.result)
                continue
            await _switch(plan, proxies, door, extras, "anthropic")
            proxy = proxies.current
            assert proxy is not None
            for oc in outcomes:
                order = ("direct", "via") if rep % 2 == 0 else ("via", "direct")
                for which in order:
                    url = upstream_url if which == "direct" else proxies.url
                    m = await measure(url, oc.scenario, plan, proxy, upstream, which == "via", door.worker)
                    (oc.direct if which == "direct" else oc.via).append(m)
                    _progress(rep, plan, oc.scenario.label, "sidecar" if which == "via" else which, m.result)
            for oc in grpc_outcomes:
                if door.skipped is not None:  # the door failed after a restart: no further runs
                    break
                assert door.target is not None
                m = await measure(door.target, oc.scenario, plan, proxy, upstream, True, door.worker)
                oc.via.append(m)
                _progress(rep, plan, oc.scenario.label, "sidecar", m.result)
            if rep == plan.repeat - 1:
                cancels = await run_cancellations(plan, upstream, upstream_url, proxy, proxies.url, door)
    by_key = {oc.scenario.key: oc for oc in outcomes}
    for oc in grpc_outcomes + openai_outcomes:  # compared with the runs of the same repetitions
        assert oc.scenario.baseline is not None
        oc.direct = by_key[oc.scenario.baseline].direct
        oc.nginx = by_key[oc.scenario.baseline].nginx
    return outcomes + openai_outcomes + grpc_outcomes, cancels


# -- the failing upstream and admission overhead ---------------------------------------------------
@dataclass
class FailurePhase:
    """The failing-upstream rows: skipped (and why) or measured by a sidecar with a retry policy."""

    skipped: str | None = None
    duration: float = 0.0
    argv: list[str] | None = None
    config: str = ""
    outcomes: list[FailOutcome] = field(default_factory=list)
    direct: dict[str, object] = field(default_factory=dict)


def _config_sidecar_skipped(args: argparse.Namespace, standin: bool, lacks: str) -> str | None:
    """Why a phase that starts ``python -m sidecar --config`` cannot run (the stand-in has no ``lacks``)."""
    if standin:
        return f"the stand-in proxy has no {lacks}"
    if args.sidecar_cmd:
        return "a custom --sidecar-cmd (this scenario starts python -m sidecar --config)"
    return None


def failures_skipped(args: argparse.Namespace, standin: bool) -> str | None:
    if args.no_failures:
        return "--no-failures"
    return _config_sidecar_skipped(args, standin, "retry policies")


def admission_skipped(args: argparse.Namespace, standin: bool) -> str | None:
    if args.no_admission:
        return "--no-admission"
    return _config_sidecar_skipped(args, standin, "admission")


def run_admission_phase(
    args: argparse.Namespace, plan: Plan, phase: AdmissionPhase, upstream_url: str, taskset_p: list[str]
) -> None:
    """The admission-overhead sidecars (and Redis), one at a time; see ``bench.admission``."""
    taskset_u = taskset(plan.pin, plan.loadgen_cpu)
    print("admission overhead: off, memory and redis sidecars, one at a time ...", flush=True)
    run_admission(
        phase,
        upstream_url,
        spawn,
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
    args: argparse.Namespace, plan: Plan, phase: FailurePhase, upstream_url: str, taskset_p: list[str]
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
            child = Child(
                "sidecar (policy)", [*taskset_p, *phase.argv], RESULTS / "sidecar-policy.stderr.log"
            )
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
