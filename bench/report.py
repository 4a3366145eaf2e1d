"""What ``python -m bench`` reports: ratios, tables and the JSON results.

From the raw results of ``bench.scenarios``: per row and proxy (nginx, the stand-in, the sidecar)
the medians, the per-repetition comparisons with the direct runs (via/direct for throughput, via -
direct for latency) and with nginx (via/nginx for throughput; for latency nginx's own added ms, to
read the others' against), the proxy's CPU time per request (and per SSE event), the status against
the target and the notes (load generator-bound, errors, a proxy that waited); the cancellation rows;
the translated vs pass-through comparison. Then the run's header, the tables (with the failing-upstream
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

from bench._standin_proxy import STACKS as STANDIN_STACKS
from bench.admission import AdmissionPhase, render_admission
from bench.cancel import BEFORE_WAIT_S, CLOSE_WAIT_S
from bench.failing import FAIL_SCENARIOS, policy_desc, render_failures
from bench.fake_upstream import FAIL_EVERY, sse_event_count
from bench.processes import (
    FOREIGN_LOAD_WARN,
    PROXY_LABELS,
    Footprint,
    GrpcDoor,
    ProxyName,
    runs_standin,
    standin_stack,
    taskset,
)
from bench.scenarios import (
    CancelOutcome,
    ExtraProxy,
    FailurePhase,
    Measurement,
    Plan,
    Scenario,
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


def _compare(s: Scenario, base: list[Measurement], runs: list[Measurement]) -> list[float]:
    """Per repetition: run/base (ratio) or run - base (added ms)."""
    out: list[float] = []
    for b, r in zip(base, runs, strict=False):
        bv, rv = s.value(b.result), s.value(r.result)
        if bv is None or rv is None or (s.kind == "ratio" and bv <= 0):
            continue
        out.append(rv / bv if s.kind == "ratio" else rv - bv)
    return out


def compared(oc: ScenarioOutcome) -> list[float]:
    """Per repetition: via/direct (ratio) or via - direct (added ms)."""
    return _compare(oc.scenario, oc.direct, oc.via)


# The proxies of a row, in the table's order, by their key in the JSON results.
TARGETS: tuple[tuple[str, ProxyName], ...] = (
    ("nginx", "nginx"),
    ("standin", "standin"),
    ("sidecar", "anthropic"),
)


def _runs(oc: ScenarioOutcome, key: str) -> list[Measurement]:
    return oc.nginx if key == "nginx" else oc.standin if key == "standin" else oc.via


def target_summary(oc: ScenarioOutcome, key: str) -> dict[str, object]:
    """One proxy's figures in a row: its median, against direct and against nginx, its CPU per request."""
    s, runs = oc.scenario, _runs(oc, key)
    vs_direct, vs_nginx = _compare(s, oc.direct, runs), _compare(s, oc.nginx, runs)
    nginx_added = _compare(s, oc.direct, oc.nginx) if s.kind == "added_ms" else []
    return {
        "via": _median([v for v in (s.value(m.result) for m in runs) if v is not None]),
        "vs_direct": _median(vs_direct),  # via/direct (ratio rows) or via - direct ms (latency rows)
        "vs_direct_per_repetition": vs_direct,
        # ratio rows: via/nginx; latency rows: via - nginx ms, and nginx - direct ms beside it
        "vs_nginx": _median(vs_nginx),
        "vs_nginx_per_repetition": vs_nginx,
        "nginx_added_ms": _median(nginx_added) if s.kind == "added_ms" else None,
        "cpu_us_per_request": _median([v for m in runs if (v := m.cpu_us_per_request()) is not None]),
        "cpu_us_per_event": (
            _median([v for m in runs if (v := m.cpu_us_per_event()) is not None]) if s.mode == "sse" else None
        ),
        "proxy_cpu_util": _median([m.proxy_cpu_util for m in runs if m.proxy_cpu_util is not None]),
        "loadgen_cpu_util": _median([m.result.loadgen_cpu_util for m in runs]),
        "errors": sum(m.result.errors for m in runs),
    }


def summary(oc: ScenarioOutcome) -> dict[str, object]:
    s = oc.scenario
    d, v, c = _values(oc, "direct"), _values(oc, "via"), compared(oc)
    value = statistics.median(c) if c else None
    status = "ERROR" if value is None else "-"
    if value is not None and s.target is not None:
        ok = value >= s.target if s.kind == "ratio" else value <= s.target
        status = "PASS" if ok else "MISS"
    # gRPC and openai rows: the sidecar's only (their nginx runs are their baseline row's)
    keys = [key for key, _ in TARGETS if s.baseline is None or key == "sidecar"]
    targets = {key: target_summary(oc, key) for key in keys if _runs(oc, key)}
    notes: list[str] = []
    for key, name in TARGETS:
        t = targets.get(key)
        ratio = t["vs_direct"] if t is not None else None
        if s.kind == "ratio" and isinstance(ratio, float) and ratio >= LOADGEN_BOUND_RATIO:
            who = "" if key == "sidecar" else f"{PROXY_LABELS[name]}'s "
            notes.append(
                f"{who}ratio {ratio:.2f} is near 1.0: the load generator + fake upstream, not the proxy, "
                "is the limit (the proxy's true ratio cannot be resolved by this harness"
                + (
                    "; the via/nginx ratios of this row understate the gap to nginx)"
                    if key == "nginx"
                    else ")"
                )
            )
    nginx = targets.get("nginx")
    if nginx is not None and s.kind == "ratio":
        ratio, util = nginx["vs_direct"], nginx["proxy_cpu_util"]
        if (
            isinstance(ratio, float)
            and ratio < LOADGEN_BOUND_RATIO
            and isinstance(util, float)
            and util < 0.8
        ):
            notes.append(
                f"nginx used only {util:.0%} of its core: it was not the limit (the load generator + fake "
                "upstream were, or other processes), so this row's via/nginx ratios overstate how close the "
                "other proxies come to nginx"
            )
    lg_via = _median([m.result.loadgen_cpu_util for m in oc.via])
    if s.door == "grpc" and lg_via is not None and lg_via >= LOADGEN_BOUND_RATIO:
        notes.append(
            f"the gRPC load generator (grpc.aio) used {lg_via:.0%} of its core: it, not only the sidecar, "
            "may be the limit"
        )
    for key, name in TARGETS:
        if key not in keys:
            continue
        runs = _runs(oc, key)
        errors = sum(m.result.errors for m in runs)
        if errors:
            samples = [e for m in runs for e in m.result.error_samples][:2]
            notes.append(f"{errors} errors through the {PROXY_LABELS[name]}, e.g. {samples}")
    direct_errors = sum(m.result.errors for m in oc.direct)
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
                f"the sidecar used only {statistics.median(left):.0%} of the CPU it had: it was waiting "
                "(not CPU-bound), e.g. on a lock, a timer or a flow-control stall"
            )
    foreign = [
        x
        for m in oc.direct + oc.via + oc.nginx + oc.standin
        for x in (m.foreign_proxy_core, m.foreign_loadgen_core)
        if x is not None
    ]
    sidecar: dict[str, object] = targets.get("sidecar") or {}
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
        "nginx": _median([x for x in (s.value(m.result) for m in oc.nginx) if x is not None]),
        "vs_nginx": sidecar.get("vs_nginx"),
        "nginx_added_ms": sidecar.get("nginx_added_ms"),
        "cpu_us_per_request": sidecar.get("cpu_us_per_request"),
        "cpu_us_per_event": sidecar.get("cpu_us_per_event"),
        "proxy_cpu_util": statistics.median(pcpu) if pcpu else None,
        "foreign_cpu_max": max(foreign) if foreign else None,
        "loadgen_cpu_util_via": lg_via,
        "loadgen_cpu_util_direct": _median([m.result.loadgen_cpu_util for m in oc.direct]),
        "targets": targets,
        "runs": {
            which: [m.result.to_dict() | _cpu(m) for m in runs]
            for which, runs in (
                ("direct", oc.direct),
                ("via", oc.via),
                ("nginx", oc.nginx),
                ("standin", oc.standin),
            )
            if which in ("direct", "via") or which in keys
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
        "proxy_cpu_s": m.proxy_cpu_s,
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


def _vs_direct(kind: object, v: object) -> str:
    if not isinstance(v, float):
        return "n/a"
    return f"{v:.3f}" if kind == "ratio" else f"{v:+.3f} ms"


def _vs_nginx(kind: object, t: dict[str, object], nginx_row: bool) -> str:
    """Ratio rows: via/nginx; latency rows: nginx's own added ms (the row's is beside it)."""
    if kind == "ratio":
        v = t["vs_nginx"]
        return "1 (yardstick)" if nginx_row and isinstance(v, float) else _vs_direct(kind, v)
    if nginx_row:
        return "(yardstick)"
    v = t["nginx_added_ms"]
    return f"nginx {v:+.3f} ms" if isinstance(v, float) else "n/a"


def _cpu_cell(t: dict[str, object]) -> str:
    req, ev = t["cpu_us_per_request"], t["cpu_us_per_event"]
    if not isinstance(req, float):
        return "n/a"
    return f"{req:,.0f}" + (f" ({ev:,.1f}/ev)" if isinstance(ev, float) else "")


def render(summaries: list[dict[str, object]], header: list[str]) -> str:
    rows = [
        (
            "scenario",
            "metric",
            "proxy",
            "direct",
            "via proxy",
            "vs direct",
            "vs nginx",
            "target",
            "result",
            "proxy CPU µs/req",
            "CPU proxy/lg",
        )
    ]
    for s in summaries:
        metric, kind = str(s["metric"]), s["kind"]
        targets: dict[str, dict[str, object]] = s["targets"]  # type: ignore[assignment]
        for key, name in TARGETS:
            t = targets.get(key)
            if t is None:
                if key != "sidecar":
                    continue
                t = dict.fromkeys(
                    (
                        "via",
                        "vs_direct",
                        "vs_nginx",
                        "nginx_added_ms",
                        "cpu_us_per_request",
                        "cpu_us_per_event",
                    )
                )
                t |= {"proxy_cpu_util": None, "loadgen_cpu_util": None}
            sidecar = key == "sidecar"
            rows.append(
                (
                    str(s["label"]),
                    METRIC_LABELS[metric],
                    "sidecar" if sidecar else PROXY_LABELS[name],
                    _fmt(_f(s["direct"]), metric),
                    _fmt(_f(t["via"]), metric),
                    _vs_direct(kind, t["vs_direct"]),
                    _vs_nginx(kind, t, key == "nginx"),
                    _fmt_target(s) if sidecar else "",
                    str(s["status"]) if sidecar else "",
                    _cpu_cell(t),
                    f"{_pct(t['proxy_cpu_util'])}/{_pct(t['loadgen_cpu_util'])}",
                )
            )
    out = [*header, "", *format_table(rows, {3, 4, 5, 9})]
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


def footprint_summary(footprints: dict[ProxyName, list[Footprint]]) -> dict[ProxyName, dict[str, object]]:
    """Per proxy: its starts, median seconds to its listening line, median RSS just after, and
    the largest peak RSS over a life (each life ran its share of the loaded runs, c=32 included)."""
    out: dict[ProxyName, dict[str, object]] = {}
    for name, starts in footprints.items():
        idle = [f.idle_rss_mb for f in starts if f.idle_rss_mb is not None]
        peaks = [f.peak_rss_mb for f in starts if f.peak_rss_mb is not None]
        out[name] = {
            "starts": len(starts),
            "ready_s": _median([f.ready_s for f in starts]),
            "idle_rss_mb": _median(idle),
            "peak_rss_mb": max(peaks) if peaks else None,
        }
    return out


def render_footprints(rows: dict[ProxyName, dict[str, object]]) -> str:
    def cell(v: object, fmt: str) -> str:
        return format(v, fmt) if isinstance(v, float) else "-"

    table = [["proxy", "starts", "to listening s", "RSS after start MB", "peak RSS MB"]]
    table += [
        [
            PROXY_LABELS[name],
            str(r["starts"]),
            cell(r["ready_s"], ".3f"),
            cell(r["idle_rss_mb"], ".1f"),
            cell(r["peak_rss_mb"], ".1f"),
        ]
        for name, r in rows.items()
    ]
    return "\n".join(
        [
            "",
            "memory and start-up per proxy (median over its starts; peak: the largest over its lives, "
            "which include the c=32 runs):",
            *format_table(table, {1, 2, 3, 4}),
        ]
    )


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
    extras: dict[ProxyName, ExtraProxy]  # nginx, the stand-in, the openai sidecar
    failing: FailurePhase
    admission: AdmissionPhase
    outcomes: list[ScenarioOutcome] = field(default_factory=list)
    cancels: list[CancelOutcome] = field(default_factory=list)
    footprints: dict[ProxyName, list[Footprint]] = field(default_factory=dict)  # per proxy, per start

    @property
    def only_flag(self) -> str | None:
        """Why the other rows are skipped: ``--only CHOICE``."""
        return f"--only {self.only}" if self.only else None

    @property
    def openai(self) -> ExtraProxy:
        return self.extras["openai"]


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
    nginx, standin = run.extras["nginx"], run.extras["standin"]
    return [
        "messages-sidecar benchmark",
        f"via:      {plan.sidecar_desc}",
        f"command:  {shlex.join([*taskset_p, *plan.sidecar_argv])}" + (f" (not run: {only})" if only else ""),
        "nginx:    "
        + (
            f"{nginx.desc} (the yardstick; one proxy runs at a time, pinned like the sidecar)"
            if nginx.skipped is None
            else f"SKIPPED ({nginx.skipped}): no nginx rows, no ratios to nginx"
        ),
        "stand-in: "
        + (
            f"{shlex.join([*taskset_p, *standin.argv])} "
            f"({STANDIN_STACKS[standin_stack(standin.argv)]}, no sidecar logic)"
            if standin.skipped is None and standin.argv is not None
            else f"skipped ({standin.skipped})"
        ),
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
        "vs direct = via/direct in the same repetition (near 1.0 = load generator-bound) or, for latency, "
        "via - direct (p50); vs nginx = via/nginx in the same repetition or, for latency, nginx's own "
        "added ms (nginx - direct) to read the row's against. Medians over repetitions.",
        "proxy CPU µs/req = the proxy process's CPU time (utime + stime, its children's too, from /proc) "
        "during the run / responses completed (SSE: also per event). CPU proxy/lg = proxy and load generator "
        "CPU during the run (1 core = 100%).",
        "gRPC rows: via = the sidecar's gRPC door (unary = CreateMessage, stream = StreamMessage, c = calls "
        "in flight on one channel), direct and nginx = the HTTP runs of the matching JSON/SSE row; the "
        "Python gRPC client's own cost is part of the gap.",
        "targets are informational: the exit code is 0 whether they pass or miss.",
    ]
    if openai.skipped is None or any(s["provider"] == "openai" for s in summaries):
        lines.insert(
            5,
            "openai rows: via = a second sidecar with --provider openai translating to the fake's "
            "/v1/chat/completions (same flags and CPU, never running alongside the first), direct and nginx "
            "= the runs of the matching row in the same repetition; SSE c=32 (openai) compares streams/s, as "
            f"its streams carry {translated_event_count(plan.deltas)} events (no ping) against "
            f"{sse_event_count(plan.deltas)}, the same {plan.deltas} content deltas.",
        )
    if run.extras["nginx"].skipped is not None:
        lines.append(f"nginx rows and ratios to nginx SKIPPED: {run.extras['nginx'].skipped}")
    if run.extras["standin"].skipped is not None:
        lines.append(f"stand-in rows skipped: {run.extras['standin'].skipped}")
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
    footprints = footprint_summary(run.footprints)
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
            + (render_footprints(footprints) + "\n" if footprints else "")
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
        "nginx": {
            "skipped": run.extras["nginx"].skipped,
            "desc": run.extras["nginx"].desc,
            "config": run.extras["nginx"].config,
        },
        "standin_proxy": {
            "skipped": run.extras["standin"].skipped,
            "argv": run.extras["standin"].argv,
            "stack": standin_stack(run.extras["standin"].argv) if run.extras["standin"].argv else None,
        },
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
        "footprints": footprints,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {out} ({doc['wall_s']} s)")
