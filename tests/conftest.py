"""Shared fixtures: the real sidecar in a subprocess or on a loop in a thread of this process
(``tests.inprocess.ThreadedSidecar``, for tests that need only its sockets), and fake upstreams
in threads."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from sidecar.core import grammar
from tests.fakes.anthropic_api import FakeAnthropic
from tests.inprocess import ThreadedSidecar

ROOT = Path(__file__).resolve().parent.parent
# The smallest config, as a dict for build_config: every model to the built-in mock.
MOCK_CONFIG = {"upstreams": {"m": {"provider": "mock"}}, "routes": [{"match": "*", "upstream": "m"}]}
_LISTEN = re.compile(r"sidecar (http|grpc) listening on (?:http://)?(\S+)")
_ADMIN = re.compile(r"sidecar admin listening on (http://\S+)")
# Every sidecar the tests start checks the grammar of every stream it emits (sidecar.core.grammar)
# and appends violations here; the autouse fixture below fails the test that caused one.
STREAM_VIOLATIONS = Path(tempfile.gettempdir()) / f"sidecar-stream-violations-{os.getpid()}.log"
# ... and so does every door driven in this process (tests/inprocess.py).
grammar.CHECK_LOG = str(STREAM_VIOLATIONS)
# Batches a sidecar stores without its own `batches.dir` go to this run's directory (here and in
# the subprocesses, which inherit it), never to the user's ~/.local/state.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="sidecar-test-state-")


def pytest_sessionstart(session: pytest.Session) -> None:
    """A compiled module older than its source would be tested instead of it: stop at once."""
    from tests.test_native import stale_compiled

    stale = stale_compiled()
    if stale:
        pytest.exit(
            f"compiled modules are older than their sources, run `make native`: {', '.join(stale)}", 2
        )


class Sidecar(Protocol):
    """What a test needs of a running sidecar, a process (``SidecarProcess``) or in this
    process (``tests.inprocess.ThreadedSidecar``): where it listens, and how to stop it."""

    http_url: str
    grpc_target: str

    def stop(self) -> None: ...


@dataclass
class SidecarProcess:
    proc: subprocess.Popen[str]
    http_url: str = ""
    grpc_target: str = ""
    admin_url: str = ""  # /metrics, /healthz, /readyz
    lines: list[str] = field(default_factory=list)

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if ``proc`` has not exited within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_sidecar(
    *args: str, env: dict[str, str] | None = None, expect_http: bool = True, expect_grpc: bool = True
) -> SidecarProcess:
    """Run ``python -m sidecar ARGS`` on free ports and wait until it says where it listens."""
    cmd = [
        sys.executable,
        "-m",
        "sidecar",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--admin-port",
        "0",
        *args,
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SIDECAR_CHECK_STREAMS": str(STREAM_VIOLATIONS), **(env or {})},
    )
    sp = SidecarProcess(proc)
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        sp.lines.append(line)
        admin = _ADMIN.search(line)
        if admin:
            sp.admin_url = admin.group(1)
        m = _LISTEN.search(line)
        if m and m.group(1) == "http":
            sp.http_url = "http://" + m.group(2)
        elif m:
            sp.grpc_target = m.group(2)
        if (sp.http_url or not expect_http) and (sp.grpc_target or not expect_grpc):
            # Keep draining output so the child never blocks on a full pipe.
            threading.Thread(target=_drain, args=(proc, sp.lines), daemon=True).start()
            return sp
    sp.stop()
    raise RuntimeError("sidecar did not start:\n" + "".join(sp.lines))


def wait_until(predicate: Callable[[], object], timeout: float = 10) -> bool:
    """Poll ``predicate`` every 50 ms until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def _drain(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


@pytest.fixture(autouse=True)
def stream_grammar() -> Iterator[None]:
    """Fail a test during which a sidecar emitted a stream that breaks the Anthropic grammar."""
    start = STREAM_VIOLATIONS.stat().st_size if STREAM_VIOLATIONS.exists() else 0
    yield
    if STREAM_VIOLATIONS.exists() and STREAM_VIOLATIONS.stat().st_size > start:
        with STREAM_VIOLATIONS.open("rb") as f:
            f.seek(start)
            found = f.read().decode("utf-8", "replace")
        pytest.fail("a sidecar emitted a stream that breaks the Anthropic stream grammar:\n" + found)


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic().start()
    yield fake
    fake.stop()


@pytest.fixture()
def upstream(fake_anthropic: FakeAnthropic) -> Iterator[FakeAnthropic]:
    """The fake Anthropic API, reset to its default answers for this test."""
    fake_anthropic.reset()
    yield fake_anthropic
    fake_anthropic.reset()


@pytest.fixture(scope="session")
def proxy_sidecar(
    fake_anthropic: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedSidecar]:
    """The sidecar proxying every model to the fake Anthropic API, forwarding client keys (what
    ``--upstream URL`` configures). Pacing is off: these tests answer 429 with retry-after on
    purpose, and one sidecar serves them all, so a test would wait out the one before it
    (tests/admission/test_pacing*.py test pacing)."""
    path = tmp_path_factory.mktemp("proxy") / "sidecar.yaml"
    path.write_text(
        "upstreams:\n"
        f"  default: {{provider: anthropic, base_url: '{fake_anthropic.base_url}', pacing: {{enabled: false}}}}\n"
        "routes:\n"
        "  - {match: '*', upstream: default}\n"
    )
    sp = ThreadedSidecar("--config", str(path), env={"SIDECAR_UPSTREAM_KEY": ""})
    yield sp
    sp.stop()


@pytest.fixture(scope="session")
def mock_sidecar() -> Iterator[ThreadedSidecar]:
    """The sidecar as `make run` starts it: no config, the built-in mock model."""
    sp = ThreadedSidecar()
    yield sp
    sp.stop()
