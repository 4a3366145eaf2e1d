"""``python -m bench``: measure the sidecar against nginx and direct calls to a fake upstream, in one run.

Starts the fake upstream (``bench.fake_upstream``, 50 content deltas per streamed answer by default,
``--deltas``) and, one at a time, each proxy pinned to the proxy's CPU, and measures four targets per
scenario in every repetition:

- direct: the load generator straight to the fake upstream (the ceiling of this harness);
- nginx (``bench/nginx.py``, Debian's package, ``make nginx``): a plain pass-through of ``/v1/``, its
  own instance with a config in a temp dir; the yardstick, what a proxy costs at the least;
- the stand-in (``bench/_standin_proxy.py``): uvicorn + aiohttp forwarding ``/v1/`` with no sidecar
  logic, what the library stack costs; with ``--standin-stack native``, the sidecar's own server and
  upstream pool forwarding with no sidecar logic instead, so the sidecar minus the stand-in is what
  its logic costs on its own stack;
- the sidecar.

Direct and the sidecar are measured back to back per scenario, nginx and the stand-in each in a phase
of their own in the same repetition (the phases' order reverses every repetition). Each figure is
reported against direct and against nginx of the same repetition, medians over repetitions:

- JSON c=32: requests/s, via/direct (target >= 0.12 for the sidecar) and via/nginx
- JSON c=1:  p50 latency, added ms over direct (target <= 0.8 ms), and nginx's added ms beside it
- SSE c=32:  events/s, via/direct (target >= 0.35) and via/nginx
- SSE c=1:   p50 time to first content delta, added ms over direct (informational), nginx's beside it

and each proxy's CPU time per request (for SSE also per event): utime + stime of the proxy process
and its children from ``/proc/PID/stat`` before and after the run (clock ticks, usually 10 ms: short
runs give coarse figures), divided by the responses (events) completed in it. ``--no-nginx`` skips
nginx (e.g. where it is not installed; the output says so and has no ratios to nginx); without
nginx on PATH it is skipped the same way. With ``--standin`` the stand-in is the sidecar: no
separate stand-in rows.

The same four through the sidecar's gRPC door (rows marked "gRPC", no targets): unary
``CreateMessage`` at c=32 (requests/s ratio) and c=1 (added p50 latency), ``StreamMessage`` at c=32
(events/s ratio) and c=1 (added p50 TTFT), driven by ``bench/grpc_loadgen.py`` (grpc.aio, one
channel) in its own process, and compared with the direct and nginx HTTP figures of the same run.

The same four HTTP rows through the OpenAI-translated path (rows marked "(openai)", no targets): a
second sidecar process started with ``--provider openai`` (otherwise the same flags, pinned to the same
CPU) in front of the fake upstream's ``POST /v1/chat/completions``, so it translates each Messages
request to a chat completion and the answer or chunk stream back to Messages / Anthropic SSE. They are
compared with the direct (and nginx) Anthropic runs of the matching rows in the same repetition, and a
second table compares them with the pass-through rows: "translated vs pass-through", openai via /
anthropic via per repetition. ``SSE c=32 (openai)`` compares streams/s rather than events/s: the
translated stream carries the same N content deltas but no ``ping``, one event fewer than the
pass-through stream. Only one proxy runs at a time (they would compete for the proxy's CPU): each
repetition measures one, stops it and starts the next (the sidecar, nginx, the stand-in, the openai
sidecar, or the reverse), each fresh start checked and warmed up. ``--no-openai`` skips these rows
(and the second sidecar).

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

With two or more CPUs and ``taskset``, the proxy (whichever runs) is pinned to the first CPU and the
fake upstream and this process (the load generator) to the second: the proxy has a core to itself,
and the direct numbers are the load generator's own ceiling. A ratio near 1.0 means that ceiling, not
the proxy, is the limit (nginx's ratio can come close to it). The gRPC load generator runs as its own
process, pinned to the second CPU as well.

The sidecar command defaults to ``python -m sidecar --upstream URL --upstream-key bench-key
--http-port 0 --grpc-port 0`` (``--no-grpc`` instead with ``--no-grpc``, which skips every gRPC
measurement); while ``sidecar/__main__.py`` does not exist, or with ``--standin``, the stand-in proxy
``bench/_standin_proxy.py`` (no gRPC door) is used. ``--sidecar-cmd`` overrides the command: a
template where ``{python}`` is this interpreter and ``{upstream}`` the upstream URL; without
``{upstream}`` the standard flags are appended. The command must print
``sidecar http listening on http://HOST:PORT``, and ``sidecar grpc listening on HOST:PORT`` for the
gRPC measurements; for the openai rows ``--provider openai`` is appended to a custom command (the
stand-in proxy has no OpenAI path: no openai rows).

Results go to stdout (a table: per scenario one row per proxy, nginx, stand-in, sidecar) and to
``bench/results/latest.json`` (per scenario ``targets``: each proxy's median, ``vs_direct``,
``vs_nginx``, ``nginx_added_ms``, CPU µs per request and per event; the nginx config of the run).
The exit code is 0 even when a target is missed; it is 1 only when the harness itself could not run.

This module parses the command line and runs the phases in order; ``bench/scenarios.py`` defines
and runs the measurements, ``bench/processes.py`` starts and stops the processes and reads their CPU,
and ``bench/report.py`` turns the results into the tables (laid out by ``bench/table.py``) and the
JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import sidecar
from bench._standin_proxy import STACKS as STANDIN_STACKS
from bench.admission import QUICK_DURATION_S as ADMISSION_QUICK_DURATION_S
from bench.admission import AdmissionPhase
from bench.failing import QUICK_DURATION_S
from bench.fake_upstream import install_uvloop
from bench.nginx import NGINX_DESC, NginxSite, nginx_path
from bench.processes import (
    RESULTS,
    STARTUP_TIMEOUT_S,
    UPSTREAM_LINE,
    Child,
    GrpcDoor,
    Proxies,
    ProxyName,
    pinning,
    runs_standin,
    sidecar_argv,
    standin_argv,
    start_grpc,
    start_upstream,
    taskset,
)
from bench.report import BenchRun, header, report
from bench.scenarios import (
    ExtraProxy,
    FailurePhase,
    Plan,
    admission_skipped,
    failures_skipped,
    run_admission_phase,
    run_bench,
    run_failure_phase,
)


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
    p.add_argument("--deltas", type=int, default=50, help="content_block_delta events per streamed answer")
    p.add_argument("--sidecar-cmd", help="command template for the proxy ({python}, {upstream} substituted)")
    p.add_argument(
        "--standin", action="store_true", help="measure bench/_standin_proxy.py instead of the sidecar"
    )
    p.add_argument(
        "--standin-stack",
        choices=tuple(STANDIN_STACKS),
        default="uvicorn",
        help="the stand-in's stack: uvicorn + aiohttp (the default, the gauge across sessions) or the "
        "sidecar's own server and upstream pool with no sidecar logic (native)",
    )
    p.add_argument(
        "--no-nginx",
        action="store_true",
        help="do not measure nginx (the yardstick), e.g. where it is missing",
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: through the finally below, which stops the subprocesses.
    signal.signal(signal.SIGTERM, _on_sigterm)
    pin, proxy_cpu, loadgen_cpu, pin_desc = pinning(args.no_pin)
    # Start-up is measured as deployed: pip byte-compiles what it installs, but a checkout run
    # with PYTHONDONTWRITEBYTECODE set would compile every changed module at each start.
    compileall.compile_dir(str(Path(sidecar.__file__).parent), quiet=1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    original_affinity = os.sched_getaffinity(0)
    upstream: Child | None = None
    proxies: Proxies | None = None
    door = GrpcDoor()
    extras: dict[ProxyName, ExtraProxy] = {
        "nginx": ExtraProxy(),
        "standin": ExtraProxy(),
        "openai": ExtraProxy(),
    }
    openai = extras["openai"]
    failing = FailurePhase()
    admission = AdmissionPhase()
    only = f"--only {args.only}" if args.only else None  # why the other rows are skipped
    try:
        if pin and loadgen_cpu is not None:
            os.sched_setaffinity(0, {loadgen_cpu})  # the load generator shares the upstream's core
        taskset_u = taskset(pin, loadgen_cpu)
        taskset_p = taskset(pin, proxy_cpu)
        upstream = start_upstream(taskset_u, args.deltas)
        upstream_url = upstream.wait_for_line(UPSTREAM_LINE, STARTUP_TIMEOUT_S).group(1)
        sidecar_cmd, sidecar_desc = sidecar_argv(args, upstream_url)
        standin = runs_standin(sidecar_cmd)
        openai_argv: list[str] | None = None
        if only:
            openai.skipped = only
        elif args.no_openai:
            openai.skipped = "--no-openai"
        elif standin:
            openai.skipped = "the stand-in proxy has no OpenAI path"
        else:
            openai_argv = sidecar_argv(args, upstream_url, "openai")[0]
        nginx_bin = nginx_path()
        site: NginxSite | None = None
        if only or args.no_nginx or nginx_bin is None:
            extras["nginx"].skipped = only or (
                "--no-nginx" if args.no_nginx else "nginx not found on PATH (make nginx installs it)"
            )
        else:
            site = NginxSite(nginx_bin, upstream_url)
            extras["nginx"].desc = f"{site.version}: {NGINX_DESC}"
        if only:
            extras["standin"].skipped = only
        elif standin:
            extras["standin"].skipped = "the sidecar rows are the stand-in proxy"
        else:
            extras["standin"].argv = standin_argv(upstream_url, args.standin_stack)
        failing.skipped = only or failures_skipped(args, standin)
        admission.skipped = admission_skipped(args, standin)
        admission.duration = min(args.duration, ADMISSION_QUICK_DURATION_S) if args.quick else args.duration
        admission.repeat = args.repeat
        failing.duration = min(args.duration, QUICK_DURATION_S) if args.quick else args.duration
        argvs: dict[ProxyName, list[str]] = {"anthropic": sidecar_cmd}
        if openai_argv is not None:
            argvs["openai"] = openai_argv
        if extras["standin"].argv is not None:
            argvs["standin"] = extras["standin"].argv
        proxies = Proxies(argvs, taskset_p, site)
        if only:
            door = GrpcDoor(skipped=only)
        else:
            door = start_grpc(args, proxies.start("anthropic"), standin, taskset_u)
        plan = Plan(
            args.duration,
            args.requests,
            args.repeat,
            args.warmup,
            args.deltas,
            pin,
            proxy_cpu,
            loadgen_cpu,
            sidecar_cmd,
            sidecar_desc,
            args.cancel_probes,
            openai_argv,
        )
        run = BenchRun(plan, pin_desc, args.only, door, extras, failing, admission)
        print("\n".join(header(run)), flush=True)
        install_uvloop()
        if not only:
            run.outcomes, run.cancels = asyncio.run(
                run_bench(plan, upstream, upstream_url, proxies, door, extras)
            )
        proxies.stop()
        run.footprints = proxies.footprints
        if site is not None:
            extras["nginx"].config = site.config
        if failing.skipped is None:
            run_failure_phase(args, plan, failing, upstream_url, taskset_p)
        if admission.skipped is None:
            run_admission_phase(args, plan, admission, upstream_url, taskset_p)
        for problem in proxies.problems:
            print(f"warning: {problem}", flush=True)
    except (RuntimeError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if door.worker is not None:
            door.worker.stop()
        if proxies is not None:
            proxies.stop()
        if upstream is not None:
            upstream.stop()
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, original_affinity)
    report(run, args.out, started)
    return 0


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
