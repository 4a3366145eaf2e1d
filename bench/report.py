"""What ``python -m bench`` reports: ratios, tables and the JSON results.

From the raw results of ``bench.scenarios``: per row the medians, the per-repetition comparison
with the direct runs (via/direct for throughput, via - direct for latency), the status against the
target and the notes (load generator-bound, errors, a proxy that waited); the cancellation rows; the
translated vs pass-through comparison. Then the run's header, the tables (with the failing-upstream
and admission tables of ``bench.failing`` and ``bench.admission``) and the footer on stdout, and the
whole run in ``bench/results/latest.json`` (or ``--out``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.admission import AdmissionPhase, render_admission
from bench.cancel import BEFORE_WAIT_S, CLOSE_WAIT_S
from bench.failing import FAIL_SCENARIOS, policy_desc, render_failures
from bench.fake_upstream import FAIL_EVERY, sse_event_count
from bench.processes import FOREIGN_LOAD_WARN, GrpcDoor, runs_standin, taskset
from bench.scenarios import (
    CancelOutcome,
    FailurePhase,
    Measurement,
    OpenAIPath,
    Plan,
    ScenarioOutcome,
    translated_event_count,
)
from bench.table import format_table

LOADGEN_BOUND_RATIO = 0.85  # at or above this, the load generator (not the proxy) is the limit
METRIC_LABELS = {
    "requests_per_s": "requests/s",
    "events_per_s": "events/s",
    "streams_per_s": "streams/s",
    "latency_p50_ms": "p50 latency ms",
    "ttft_p50_ms": "p50 TTFT ms",
}


# -- summaries -------------------------------------------------------------------------------------
def _values(oc: ScenarioOutcome, which: str) -> list[float]:
    ms = oc.direct if which == "direct" else oc.via
    vals = [oc.scenario.value(m.result) for m in ms]
    return [v for v in vals if v is not None]


def compared(oc: ScenarioOutcome) -> list[float]:
    """Per repetition: via/direct (ratio) or via - direct (added ms)."""
    out: list[float] = []
    for d, v in zip(oc.direct, oc.via, strict=False):
        dv, vv = oc.scenario.value(d.result), oc.scenario.value(v.result)
        if dv is None or vv is None:
            continue
        out.append(vv / dv if oc.scenario.kind == "ratio" else vv - dv)
    return out


def summary(oc: ScenarioOutcome) -> dict[str, object]:
    s = oc.scenario
    d, v, c = _values(oc, "direct"), _values(oc, "via"), compared(oc)
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
    lg_via = _median([m.result.loadgen_cpu_util for m in oc.via])
    if s.door == "grpc" and lg_via is not None and lg_via >= LOADGEN_BOUND_RATIO:
        notes.append(
            f"the gRPC load generator (grpc.aio) used {lg_via:.0%} of its core: it, not only the sidecar, "
            "may be the limit"
        )
    via_errors = sum(m.result.errors for m in oc.via)
    direct_errors = sum(m.result.errors for m in oc.direct)
    if via_errors:
        samples = [e for m in oc.via for e in m.result.error_samples][:2]
        notes.append(f"{via_errors} errors through the sidecar, e.g. {samples}")
    if direct_errors:
        notes.append(f"{direct_errors} errors direct (harness problem)")
    pcpu = [m.proxy_cpu_util for m in oc.via if m.proxy_cpu_util is not None]
    # Share of its (pinned) core the proxy could have used: what other processes left it.
    left = [
        m.proxy_cpu_util / max(0.05, 1.0 - (m.foreign_proxy_core or 0.0))
        for m in oc.via
        if m.proxy_cpu_util is not None and m.foreign_loadgen_core is not None
    ]
    if s.kind == "ratio" and left and statistics.median(left) < 0.8 and value is not None:
        if value < LOADGEN_BOUND_RATIO:
            notes.append(
                f"the proxy used only {statistics.median(left):.0%} of the CPU it had: it was waiting "
                "(not CPU-bound), e.g. on a lock, a timer or a flow-control stall"
            )
    foreign = [
        x for m in oc.direct + oc.via for x in (m.foreign_proxy_core, m.foreign_loadgen_core) if x is not None
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
        "loadgen_cpu_util_direct": _median([m.result.loadgen_cpu_util for m in oc.direct]),
        "runs": {
            "direct": [m.result.to_dict() | _cpu(m) for m in oc.direct],
            "via": [m.result.to_dict() | _cpu(m) for m in oc.via],
        },
    }


def cancel_summary(oc: CancelOutcome) -> dict[str, object]:
    cs, r = oc.scenario, oc.result
    notes: list[str] = []
    status = "-"
    pct: dict[str, float] = {}
    if r is None:
        status = "ERROR"
        notes.append(oc.problem or "no result")
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
    foreign = [x for x in (oc.foreign_proxy_core, oc.foreign_loadgen_core) if x is not None]
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
        "proxy_cpu_util": oc.proxy_cpu_util,
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


# -- tables ----------------------------------------------------------------------------------------
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


def _notes(summaries: list[dict[str, object]], during: str, consequence: str) -> list[str]:
    """The rows' notes, and a warning when other processes used CPU ``during`` the rows' runs."""
    out: list[str] = []
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
            f"WARNING: other processes used CPU during the {during} (max share of a core: "
            + ", ".join(noisy)
            + f"); {consequence}, rerun on a quiet machine"
        )
    return out


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
    out = [*header, "", *format_table(rows, {2, 3, 4})]
    out.extend(_notes(summaries, "runs", "these numbers are noisy"))
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
    out = [
        "",
        f"cancellation latency: upstream close - client close, ms ({n} sequential probes per row; "
        "direct baseline: none, 0 by definition):",
        "",
        *format_table(rows, {2, 3, 4, 5}),
    ]
    out.extend(_notes(summaries, "probes", "scheduling delays show up in these latencies"))
    return "\n".join(out)


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
    out = [
        "",
        "translated vs pass-through: openai via / anthropic via, per repetition (medians); "
        "< 1 for throughput or > 1 for latency = the translated path is slower:",
        "",
        *format_table(rows_out, {2, 3}),
    ]
    return "\n".join(out)


def _f(v: object) -> float | None:
    return v if isinstance(v, float) else None


# -- the run's report ------------------------------------------------------------------------------
@dataclass
class BenchRun:
    """One run of ``python -m bench``: what it planned, what each phase did, what it measured."""

    plan: Plan
    pin_desc: str
    only: str | None  # the --only choice ("admission"): no other rows
    door: GrpcDoor
    openai: OpenAIPath
    failing: FailurePhase
    admission: AdmissionPhase
    outcomes: list[ScenarioOutcome] = field(default_factory=list)
    cancels: list[CancelOutcome] = field(default_factory=list)

    @property
    def only_flag(self) -> str | None:
        """Why the other rows are skipped: ``--only CHOICE``."""
        return f"--only {self.only}" if self.only else None


def header(run: BenchRun) -> list[str]:
    """What the run will do: the commands, the pinning, the sizes, and each phase or why it is skipped."""
    plan, door, only = run.plan, run.door, run.only_flag
    taskset_p = taskset(plan.pin, plan.proxy_cpu)
    grpc_desc = (
        f"{door.target} (bench/grpc_loadgen.py: grpc.aio, one channel, its own process"
        + (f" on CPU {plan.loadgen_cpu})" if plan.pin else ")")
        if door.skipped is None
        else f"skipped ({door.skipped})"
    )
    return [
        "messages-sidecar benchmark",
        f"via:      {plan.sidecar_desc}",
        f"command:  {shlex.join([*taskset_p, *plan.sidecar_argv])}" + (f" (not run: {only})" if only else ""),
        f"pinning:  {run.pin_desc}",
        f"runs:     {plan.duration:g} s or {plan.requests:,} requests per measurement, {plan.repeat} "
        f"repetition(s) (medians), SSE answers of {sse_event_count(plan.deltas)} events",
        f"gRPC:     {grpc_desc}",
        "openai:   "
        + (
            f"{shlex.join([*taskset_p, *plan.openai_argv])} (a second sidecar; one sidecar runs at a time, "
            f"SSE answers of {translated_event_count(plan.deltas)} events)"
            if plan.openai_argv is not None
            else f"skipped ({run.openai.skipped})"
        ),
        f"cancel:   {plan.cancel_n} sequential probes per row; times are time.monotonic() "
        "(CLOCK_MONOTONIC on Linux: one clock for all processes)",
        "failing:  "
        + (
            f"python -m sidecar --config (a {policy_desc()}); the fake fails every {FAIL_EVERY}th attempt, "
            f"{run.failing.duration:g} s per run"
            if run.failing.skipped is None
            else f"skipped ({run.failing.skipped})"
        ),
        "admission: "
        + (
            f"python -m sidecar --config: admission off / memory / redis (redis-server pinned to the load "
            f"generator's CPU), {run.admission.duration:g} s per run"
            if run.admission.skipped is None
            else f"skipped ({run.admission.skipped})"
        ),
    ]


def footer(run: BenchRun, summaries: list[dict[str, object]]) -> list[str]:
    """How to read the tables, and which rows were skipped."""
    plan, door, openai = run.plan, run.door, run.openai
    direct_ceiling = {s["scenario"]: s["direct"] for s in summaries}
    lines = [
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
        lines.insert(
            4,
            "openai rows: via = a second sidecar with --provider openai translating to the fake's "
            "/v1/chat/completions (same flags and CPU, never running alongside the first), direct = the direct "
            "run of the matching row in the same repetition; SSE c=32 (openai) compares streams/s, as its "
            f"streams carry {translated_event_count(plan.deltas)} events (no ping) against "
            f"{sse_event_count(plan.deltas)}, the same {plan.deltas} content deltas.",
        )
    if openai.skipped is not None:
        lines.append(f"openai rows skipped: {openai.skipped}")
    if door.skipped is not None:
        lines.append(f"gRPC rows and gRPC cancellation rows skipped: {door.skipped}")
    return lines


def report(run: BenchRun, out: Path, started: float) -> None:
    """Print the tables (or why they are skipped) and the footer; write the JSON results to ``out``.

    ``started``: ``time.monotonic()`` at the start of the run, for its wall time.
    """
    plan, door, openai, failing, admission, only = (
        run.plan,
        run.door,
        run.openai,
        run.failing,
        run.admission,
        run.only_flag,
    )
    summaries = [summary(oc) for oc in run.outcomes]
    translated = translated_vs_passthrough(run.outcomes)
    cancel_summaries = [cancel_summary(oc) for oc in run.cancels]
    failing_rows = [row for oc in failing.outcomes for row in oc.rows()]
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
            + "\n".join(footer(run, summaries)),
            flush=True,
        )
    print(render_admission(admission), flush=True)
    doc = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sidecar": plan.sidecar_desc,
        "sidecar_argv": plan.sidecar_argv,
        "standin": runs_standin(plan.sidecar_argv),
        "pinning": {
            "pinned": plan.pin,
            "proxy_cpu": plan.proxy_cpu,
            "loadgen_and_upstream_cpu": plan.loadgen_cpu,
            "desc": run.pin_desc,
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
            "only": run.only,
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
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {out} ({doc['wall_s']} s)")
