"""The failing-upstream scenario of ``python -m bench``: what a failing upstream costs a client.

A sidecar started with a retry policy (``policy_config``: one upstream, up to 3 attempts, backoff
10..50 ms, no circuit breaker, a retry budget that never refuses) in front of the fake upstream, whose
model ``bench-fail-20`` fails every 5th upstream request with HTTP 529 ``overloaded_error`` (and
``bench-fail-20-inband`` fails streams in-band: HTTP 200, ``message_start``, ``event: error``). Per row
(JSON c=1, JSON c=8, SSE c=1) the same load is run against the healthy model and the failing model(s)
through that sidecar, and the failing rows report what they add to the healthy row's p50/p90/p99
latency (time to first content delta for SSE), their requests/s, the error rate the client sees (0
when the retries work), and the upstream attempts per client request (counted by the fake).

The fake's counter is per model and shared by all connections, and retries are upstream requests
too: 20 % of *upstream attempts* fail, so 1 client request in 4 needs a retry (at c=1, exactly; under
concurrency, a retry can again land on a failing slot, about 1 time in 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.fake_upstream import FAIL_EVERY, FAIL_INBAND_MODEL, FAIL_MODEL, OVERLOADED_STATUS
from bench.loadgen import DEFAULT_MODEL, LoadResult, Mode, run_load
from bench.table import format_table

HEALTHY_MODEL = DEFAULT_MODEL
MODEL_LABELS = {
    HEALTHY_MODEL: "healthy",
    FAIL_MODEL: f"{100 // FAIL_EVERY}% 529",
    FAIL_INBAND_MODEL: f"{100 // FAIL_EVERY}% in-band error",
}
# The policy under test, as the brief of issue 7 gives it (retry.jitter keeps its default, 0.25).
MAX_ATTEMPTS = 3
BASE_BACKOFF_S = 0.01
MAX_BACKOFF_S = 0.05
QUICK_DURATION_S = 0.8  # per measurement with --quick (7 measurements)
CONNECT_TIMEOUT_S = 5.0


def policy_config(upstream_url: str) -> str:
    """The sidecar config (YAML): every model through a retry policy to the fake upstream."""
    return (
        "upstreams:\n"
        f'  up: {{provider: anthropic, base_url: "{upstream_url}", api_key: bench}}\n'
        "routes:\n"
        '  - match: "*"\n'
        "    policy:\n"
        "      groups: [{targets: [{upstream: up}]}]\n"
        f"      retry: {{max_attempts: {MAX_ATTEMPTS}, base_backoff: {BASE_BACKOFF_S}, "
        f"max_backoff: {MAX_BACKOFF_S}}}\n"
        "      budget: {max_retries_per_request: 2, ratio: 1.0, min_retries: 1000}\n"
        "      breaker: {enabled: false}\n"
    )


def policy_desc() -> str:
    return (
        f"retry policy: {MAX_ATTEMPTS} attempts, backoff {BASE_BACKOFF_S * 1000:g} ms doubling to "
        f"{MAX_BACKOFF_S * 1000:g} ms (jitter x[0.75, 1]), breaker off, budget never refuses"
    )


@dataclass(frozen=True)
class FailScenario:
    key: str
    label: str
    mode: Mode
    connections: int
    models: tuple[str, ...]  # the first is the healthy baseline

    @property
    def metric(self) -> str:
        return "TTFT" if self.mode == "sse" else "latency"


FAIL_SCENARIOS = (
    FailScenario("fail_json_c1", "JSON c=1", "json", 1, (HEALTHY_MODEL, FAIL_MODEL)),
    FailScenario("fail_json_c8", "JSON c=8", "json", 8, (HEALTHY_MODEL, FAIL_MODEL)),
    FailScenario("fail_sse_c1", "SSE c=1", "sse", 1, (HEALTHY_MODEL, FAIL_MODEL, FAIL_INBAND_MODEL)),
)
PCTS = ("p50", "p90", "p99")
MODES: tuple[Mode, ...] = ("json", "sse")


@dataclass
class FailRun:
    """One measurement, and what the fake counted for the model meanwhile (None for the healthy one)."""

    result: LoadResult
    upstream: dict[str, int] | None = None  # {"requests": attempts seen, "failed": 529s / in-band errors}


@dataclass
class FailOutcome:
    scenario: FailScenario
    runs: dict[str, list[FailRun]] = field(default_factory=dict)  # model -> one run per repetition

    def rows(self) -> list[dict[str, object]]:
        s = self.scenario
        healthy = self.runs.get(s.models[0], [])
        out: list[dict[str, object]] = []
        for model in s.models:
            runs = self.runs.get(model, [])
            pcts = {
                k: _median([v for r in runs if (v := _pct(r.result, s.mode, k)) is not None]) for k in PCTS
            }
            added: dict[str, float | None] = {}
            for k in PCTS:
                diffs = [
                    fv - hv
                    for h, f in zip(healthy, runs, strict=False)  # the same repetition
                    if (hv := _pct(h.result, s.mode, k)) is not None
                    and (fv := _pct(f.result, s.mode, k)) is not None
                ]
                added[k] = _median(diffs) if model != s.models[0] else None
            ok = sum(r.result.ok for r in runs)
            errors = sum(r.result.errors for r in runs)
            completed = sum(r.result.completed for r in runs)
            ups = [r.upstream for r in runs if r.upstream is not None]
            up_requests = sum(u["requests"] for u in ups) if ups else None
            up_failed = sum(u["failed"] for u in ups) if ups else None
            rps = [r.result.requests_per_s for r in runs if r.result.ok]
            out.append(
                {
                    "scenario": s.key,
                    "label": s.label,
                    "mode": s.mode,
                    "connections": s.connections,
                    "model": model,
                    "upstream_behaviour": MODEL_LABELS.get(model, model),
                    "metric": "ttft_ms" if s.mode == "sse" else "latency_ms",
                    "requests_per_s": _median(rps),
                    **{f"{k}_ms": pcts[k] for k in PCTS},
                    **{f"added_{k}_ms": added[k] for k in PCTS},
                    "requests": ok + errors,
                    "completed": completed,
                    "client_errors": errors,
                    "client_error_rate": errors / (ok + errors) if ok + errors else None,
                    "error_samples": [e for r in runs for e in r.result.error_samples][:3],
                    "upstream_requests": up_requests,
                    "upstream_failed": up_failed,
                    "upstream_attempts_per_request": (
                        up_requests / (ok + errors) if up_requests is not None and ok + errors else None
                    ),
                    # attempts after the first, and requests whose every attempt failed (retries exhausted)
                    "retries": up_requests - (ok + errors) if up_requests is not None else None,
                    "exhausted": (
                        up_failed - (up_requests - (ok + errors))
                        if up_requests is not None and up_failed is not None
                        else None
                    ),
                    "runs": [r.result.to_dict() | {"upstream": r.upstream} for r in runs],
                }
            )
        return out


def _pct(r: LoadResult, mode: Mode, key: str) -> float | None:
    return (r.ttft_ms if mode == "sse" else r.latency_ms).get(key)


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


# -- talking to the fake upstream --------------------------------------------------------------------
async def upstream_failures(upstream_url: str) -> dict[str, dict[str, int]]:
    """The fake upstream's failure counters (``GET /_bench/failures``): model -> requests, failed."""
    parts = urlsplit(upstream_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
    try:
        writer.write(f"GET /_bench/failures HTTP/1.1\r\nhost: {host}:{port}\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), CONNECT_TIMEOUT_S)  # connection: close
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET /_bench/failures answered {head[:40]!r}")
    counts = json.loads(body)
    if not isinstance(counts, dict):
        raise RuntimeError(f"GET /_bench/failures answered {body[:80]!r}")
    return {str(m): {"requests": int(c["requests"]), "failed": int(c["failed"])} for m, c in counts.items()}


def _delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], model: str) -> dict[str, int]:
    b, a = before.get(model, {}), after.get(model, {})
    return {k: a.get(k, 0) - b.get(k, 0) for k in ("requests", "failed")}


async def check_injection(upstream_url: str, proxy_url: str) -> dict[str, object]:
    """Sanity checks; raises RuntimeError when something is off. Returns what the direct runs saw.

    Direct to the fake: FAIL_EVERY sequential requests of each failure model contain exactly one
    failure (a 529, or an SSE stream without message_stop). Via the sidecar: the healthy model
    answers JSON and SSE.
    """
    problems: list[str] = []
    direct: dict[str, object] = {}
    checks: tuple[tuple[Mode, str], ...] = (
        ("json", FAIL_MODEL),
        ("sse", FAIL_MODEL),
        ("sse", FAIL_INBAND_MODEL),
    )
    for mode, model in checks:
        r = await run_load(upstream_url, mode, 1, FAIL_EVERY, 10.0, model=model)
        direct[f"{mode} {model}"] = {"ok": r.ok, "errors": r.errors, "statuses": r.statuses}
        want_status = {200: FAIL_EVERY} if model == FAIL_INBAND_MODEL else {200: FAIL_EVERY - 1}
        if model != FAIL_INBAND_MODEL:
            want_status[OVERLOADED_STATUS] = 1
        if r.ok != FAIL_EVERY - 1 or r.errors != 1 or r.statuses != want_status:
            problems.append(
                f"direct {mode} {model}: {r.ok} ok, {r.errors} errors, statuses {r.statuses} "
                f"(want {FAIL_EVERY - 1} ok, 1 failure)"
            )
    for mode in MODES:
        r = await run_load(proxy_url, mode, 1, 1, 10.0)
        if r.ok != 1:
            problems.append(f"via the policy sidecar, {mode}: statuses {r.statuses}, {r.error_samples}")
    if problems:
        raise RuntimeError("failing-upstream sanity check failed: " + "; ".join(problems))
    return direct


async def run_failures(
    upstream_url: str,
    proxy_url: str,
    *,
    duration: float,
    requests: int,
    repeat: int,
    warmup: float,
    progress: Callable[[str], None] = print,
) -> tuple[list[FailOutcome], dict[str, object]]:
    """Check, warm up, then per repetition every scenario and model; alternate the model order."""
    direct = await check_injection(upstream_url, proxy_url)
    if warmup > 0:
        for mode in MODES:
            await run_load(proxy_url, mode, 8, requests, warmup)
    outcomes = [FailOutcome(s) for s in FAIL_SCENARIOS]
    for rep in range(repeat):
        for oc in outcomes:
            s = oc.scenario
            models = s.models if rep % 2 == 0 else tuple(reversed(s.models))
            for model in models:
                counted = model != HEALTHY_MODEL
                before = await upstream_failures(upstream_url) if counted else {}
                gc.collect()
                gc.disable()
                try:
                    r = await run_load(proxy_url, s.mode, s.connections, requests, duration, model=model)
                finally:
                    gc.enable()
                up = _delta(before, await upstream_failures(upstream_url), model) if counted else None
                oc.runs.setdefault(model, []).append(FailRun(r, up))
                pct = r.ttft_ms if s.mode == "sse" else r.latency_ms
                progress(
                    f"  [{rep + 1}/{repeat}] {s.label:<9} {MODEL_LABELS[model]:<17} "
                    f"{r.requests_per_s:>8,.0f} req/s  {s.metric} "
                    + " ".join(f"{k} {pct.get(k, float('nan')):.3f}" for k in PCTS)
                    + " ms"
                    + (f"  upstream {up['requests']} attempts, {up['failed']} failed" if up else "")
                    + (f"  client errors {r.errors} {r.error_samples[:1]}" if r.errors else "")
                )
    return outcomes, direct


def render_failures(rows: list[dict[str, object]], duration: float, repeat: int) -> str:
    def ms(v: object, signed: bool = False) -> str:
        if not isinstance(v, float):
            return "-"
        return f"{v:+.2f}" if signed else f"{v:.2f}"

    table = [
        (
            "scenario",
            "upstream",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "added p50/p90/p99 ms",
            "client errors",
            "attempts/req",
        )
    ]
    for r in rows:
        rps = r["requests_per_s"]
        rate = r["client_error_rate"]
        apr = r["upstream_attempts_per_request"]
        added = "-"
        if r["model"] != HEALTHY_MODEL:
            added = "/".join(ms(r[f"added_{k}_ms"], signed=True) for k in PCTS)
        table.append(
            (
                f"{r['label']} ({'TTFT' if r['mode'] == 'sse' else 'latency'})",
                str(r["upstream_behaviour"]),
                f"{rps:,.0f}" if isinstance(rps, float) else "n/a",
                ms(r["p50_ms"]),
                ms(r["p90_ms"]),
                ms(r["p99_ms"]),
                added,
                f"{r['client_errors']}/{r['requests']} ({rate:.1%})" if isinstance(rate, float) else "n/a",
                f"{apr:.3f}" if isinstance(apr, float) else "-",
            )
        )
    out = [
        "",
        f"failing upstream: the sidecar with a {policy_desc()}; the fake upstream fails every "
        f"{FAIL_EVERY}th attempt of the failing model ({duration:g} s per run, {repeat} repetition(s), medians):",
        "",
        *format_table(table, {2, 3, 4, 5, 6, 7, 8}),
    ]
    p_all = (1 / FAIL_EVERY) ** MAX_ATTEMPTS
    out.append(
        "added = failing - healthy, same row and repetition (SSE: time to the first content delta); "
        f"attempts/req = upstream attempts the fake saw per client request ({FAIL_EVERY / (FAIL_EVERY - 1):g} "
        f"= one retry per failure, as 1 attempt in {FAIL_EVERY} fails)."
    )
    bad = [r for r in rows if isinstance(r["client_errors"], int) and r["client_errors"]]
    for r in bad:
        exhausted = r["exhausted"]
        why = ""
        if isinstance(exhausted, int) and exhausted == r["client_errors"]:
            why = (
                f": the requests whose {MAX_ATTEMPTS} attempts all failed (concurrent requests share the fake's "
                f"counter, so a retry can land on a failing slot again; independent {100 // FAIL_EVERY} % "
                f"failures would exhaust {p_all:.1%} of requests)"
            )
        out.append(
            f"note [{r['label']} {r['upstream_behaviour']}]: {r['client_errors']} client-visible errors{why}; "
            f"e.g. {r['error_samples']}"
        )
    return "\n".join(out)
