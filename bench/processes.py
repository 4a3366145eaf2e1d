"""The processes of a ``python -m bench`` run: starting and stopping them, and their CPU.

- ``Child``: a subprocess in its own process group (the fake upstream, a sidecar, nginx, the gRPC
  load generator worker, Redis), its stdout drained by a thread, its stderr in a log under
  ``bench/results``; ``wait_for_line`` for its listening line, ``cpu_seconds`` (its own and its
  children's) from ``/proc``.
- The commands: the fake upstream (``bench.fake_upstream``), the sidecar (``python -m sidecar``, a
  ``--sidecar-cmd`` template, or the stand-in proxy ``bench/_standin_proxy.py``), its
  ``--provider openai`` twin, the stand-in proxy as a target of its own, and the gRPC load generator
  (``bench.grpc_loadgen --serve``); nginx's is in ``bench.nginx``.
- ``Proxies``: the pass-through and the openai sidecar, nginx and the stand-in, one alive at a time.
- Pinning (``taskset``): the proxy on the first CPU, the fake upstream and the load generator(s) on
  the second.
- ``CpuWindow``: the CPU time of the proxy, the fake upstream and the load generator(s) over one
  measurement, and what other processes used (``/proc/stat``), which makes a result noisy above
  ``FOREIGN_LOAD_WARN``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import runpy
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

from bench._standin_proxy import STACKS as STANDIN_STACKS

if TYPE_CHECKING:
    from bench.nginx import NginxSite

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
Provider = Literal["anthropic", "openai"]
ProxyName = Literal["anthropic", "openai", "nginx", "standin"]  # the proxies measured


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
        self.started = time.monotonic()
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
        """utime + stime of the process and of its children, from /proc.

        Its children: those it has waited for (cutime + cstime) and those still running in its session
        (it leads one: ``start_new_session``). None when the process is gone.
        """
        own = _stat_fields(self.proc.pid)
        if own is None:
            return None
        ticks = sum(int(own[i]) for i in (11, 12, 13, 14))
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == self.proc.pid:
                continue
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[3]) == self.proc.pid:  # its session
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def memory_mb(self, field: str = "VmRSS") -> float | None:
        """The process's resident memory (``VmRSS``) or its peak since start (``VmHWM``), MB, from
        /proc; None when the process is gone."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            return None
        return None

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


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name: [0] is the state, [3] the session id,
    [11] utime, [12] stime, [13] cutime, [14] cstime (clock ticks)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def spawn(name: str, argv: list[str], log: str, append: bool) -> Child:
    """A ``Child`` whose stderr goes to ``log`` under ``bench/results`` (``bench.admission``'s ``Spawn``)."""
    return Child(name, argv, RESULTS / log, append=append)


# -- the fake upstream, the sidecars, the gRPC load generator --------------------------------------
def start_upstream(taskset_u: list[str], deltas: int) -> Child:
    """The fake upstream on a free port, ``deltas`` content deltas per streamed answer."""
    return Child(
        "fake upstream",
        [
            *taskset_u,
            sys.executable,
            "-m",
            "bench.fake_upstream",
            "--port",
            "0",
            "--deltas",
            str(deltas),
        ],
        RESULTS / "upstream.stderr.log",
    )


def _standin_argv(stack: str = "uvicorn") -> list[str]:
    return [sys.executable, "-m", "bench._standin_proxy", *(["--stack", stack] if stack != "uvicorn" else [])]


def sidecar_argv(
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
            _standin_argv(args.standin_stack) + std,
            f"STAND-IN proxy bench/_standin_proxy.py, {STANDIN_STACKS[args.standin_stack]} ({why})",
        )
    # The admin listener (metrics) on a free port; --no-metrics measures the sidecar without them.
    extra = ["--admin-port", "0", *(["--no-metrics"] if args.no_metrics else [])]
    metrics = "metrics off" if args.no_metrics else "metrics on"
    desc = f"sidecar (python -m sidecar, {metrics}, {sidecar_build()})"
    return [sys.executable, "-m", "sidecar", *std, *extra], desc


def sidecar_build() -> str:
    """Which build of the sidecar runs: its request path compiled (``make native``, setup.py),
    or pure Python. The two differ by a third in CPU per request, so a figure names its build."""
    compiled = runpy.run_path(str(REPO / "setup.py"), run_name="setup")["compiled_sources"](REPO / "sidecar")
    return f"{len(compiled)} modules compiled" if compiled else "pure Python"


def runs_standin(argv: list[str]) -> bool:
    """Whether the sidecar command is the stand-in proxy."""
    return "bench._standin_proxy" in " ".join(argv)


def standin_argv(upstream_url: str, stack: str = "uvicorn") -> list[str]:
    """The stand-in proxy as a target of its own, beside the sidecar (no gRPC door)."""
    return [
        *_standin_argv(stack),
        "--upstream",
        upstream_url,
        "--upstream-key",
        UPSTREAM_KEY,
        "--http-port",
        "0",
    ]


def standin_stack(argv: list[str]) -> str:
    """The stack of a stand-in command (``standin_argv``)."""
    return argv[argv.index("--stack") + 1] if "--stack" in argv else "uvicorn"


# What the tables and messages call each proxy, and its stderr log under bench/results.
PROXY_LABELS: dict[ProxyName, str] = {
    "anthropic": "sidecar",
    "openai": "sidecar (openai)",
    "nginx": "nginx",
    "standin": "stand-in",
}
_PROXY_LOGS: dict[ProxyName, str] = {
    "anthropic": "sidecar.stderr.log",
    "openai": "sidecar-openai.stderr.log",
    "nginx": "nginx.stderr.log",
    "standin": "standin.stderr.log",
}


@dataclass
class Footprint:
    """One start of a proxy: seconds from exec to its listening line (a sidecar with the gRPC door:
    its gRPC one, the last; nginx: until its port accepts), its RSS then, and its peak RSS
    (``VmHWM``) over its life, read when it is stopped."""

    ready_s: float
    idle_rss_mb: float | None
    peak_rss_mb: float | None = None


class Proxies:
    """The proxy processes (the sidecars, nginx, the stand-in), one alive at a time: each is pinned
    to the proxy's CPU.

    ``start`` (blocking) stops the running one if it is another, then starts and waits for ``name``'s:
    a sidecar or the stand-in until its listening line, nginx (``bench.nginx``) until its port
    accepts. A restart appends to that proxy's log.
    """

    def __init__(
        self, argv: dict[ProxyName, list[str]], taskset: list[str], nginx: NginxSite | None = None
    ) -> None:
        self.argv = argv
        self.taskset = taskset
        self.nginx = nginx
        self.current: Child | None = None
        self.name: ProxyName | None = None
        self.url = ""
        self.starts: dict[ProxyName, int] = {}
        self.problems: list[str] = []  # proxies that exited on their own
        self.footprints: dict[ProxyName, list[Footprint]] = {}  # one per start

    def start(self, name: ProxyName) -> Child:
        if self.current is not None and self.name == name:
            return self.current
        self.stop()
        n = self.starts.get(name, 0)
        self.starts[name] = n + 1
        log = RESULTS / _PROXY_LOGS[name]
        if name == "nginx":
            if self.nginx is None:
                raise RuntimeError("nginx is not set up")
            self.current, self.url = self.nginx.start(self.taskset, log, n > 0, STARTUP_TIMEOUT_S)
        else:
            argv = self.argv[name]
            self.current = Child(PROXY_LABELS[name], [*self.taskset, *argv], log, append=n > 0)
            self.url = self.current.wait_for_line(SIDECAR_LINE, STARTUP_TIMEOUT_S).group(1)
            if name != "standin" and "--no-grpc" not in argv:
                # Started means every door listening: the gRPC door comes up after the HTTP one
                # (and grpc is loaded only then), so its line is the one that says ready.
                self.current.wait_for_line(GRPC_LINE, GRPC_LINE_TIMEOUT_S, "its gRPC listening line")
        self.name = name
        ready = time.monotonic() - self.current.started
        self.footprints.setdefault(name, []).append(Footprint(ready, self.current.memory_mb()))
        return self.current

    def stop(self) -> None:
        child = self.current
        if child is None:
            return
        if child.proc.poll() is not None and self.url:  # it had started: it died on its own
            self.problems.append(f"the {child.name} exited during the run (code {child.proc.returncode})")
        if self.name is not None and self.footprints.get(self.name):
            self.footprints[self.name][-1].peak_rss_mb = child.memory_mb("VmHWM")
        self.current, self.name, self.url = None, None, ""
        child.stop()
        if self.nginx is not None:
            self.nginx.stop()


@dataclass
class GrpcDoor:
    """The gRPC side of a run: the sidecar's gRPC address and the worker that loads it."""

    target: str | None = None
    worker: Child | None = None
    skipped: str | None = None  # why there are no gRPC measurements


def start_grpc(args: argparse.Namespace, proxy: Child, standin: bool, taskset_u: list[str]) -> GrpcDoor:
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


# -- CPUs ------------------------------------------------------------------------------------------
def pinning(no_pin: bool) -> tuple[bool, int | None, int | None, str]:
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


def taskset(pin: bool, cpu: int | None) -> list[str]:
    """The prefix that pins a command to ``cpu``, or nothing when not pinned."""
    return ["taskset", "-c", str(cpu)] if pin else []


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


class Pinning(Protocol):
    """Where the processes run (``bench.scenarios.Plan``)."""

    @property
    def pin(self) -> bool: ...

    @property
    def proxy_cpu(self) -> int | None: ...

    @property
    def loadgen_cpu(self) -> int | None: ...


class CpuWindow:
    """Measures the CPU of the proxy (a sidecar, nginx or the stand-in), the fake upstream and the
    load generator(s) over a window.

    The load generator is this process and, when there is one, the gRPC worker process.
    """

    def __init__(self, plan: Pinning, proxy: Child, upstream: Child, worker: Child | None) -> None:
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
