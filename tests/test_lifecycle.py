"""Lifecycle: SIGTERM drains (readiness off at once, calls finish, late ones are cut well-formed),
SIGHUP and a changed file reload routes and upstreams without dropping calls in flight."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from sidecar.client import Client, SidecarAPIError
from sidecar.core.sse import SSESplitter
from tests.conftest import SidecarProcess, start_sidecar, wait_until

CONFIG = """
lifecycle: {{drain_timeout: {drain}, watch_interval: 0.2}}
upstreams:
  m: {{provider: mock, words: {words}}}
routes:
  - {{match: "*", upstream: m}}
"""


def _config(tmp_path: Path, drain: float = 10, words: int = 5) -> Path:
    path = tmp_path / "sidecar.yaml"
    path.write_text(CONFIG.format(drain=drain, words=words))
    return path


def _slow(words: int = 12, gap_ms: int = 150) -> dict[str, Any]:
    return {
        "model": "m",
        "max_tokens": 500,
        "messages": [
            {"role": "user", "content": f"[mock words={words} words_per_delta=1 gap_ms={gap_ms}] go"}
        ],
    }


def _http_stream(url: str, body: dict[str, Any], out: dict[str, Any]) -> None:
    try:
        with httpx.stream(
            "POST",
            url + "/v1/messages",
            json={**body, "stream": True},
            headers={"x-api-key": "k"},
            timeout=60,
        ) as r:
            out["status"] = r.status_code
            out["events"] = [e.data for e in SSESplitter().feed(b"".join(r.iter_raw()))]
    except Exception as exc:  # recorded, asserted by the test
        out["exception"] = repr(exc)


def _grpc_stream(target: str, body: dict[str, Any], out: dict[str, Any]) -> None:
    events: list[dict[str, Any]] = []
    out["events"] = events
    try:
        with Client(target, api_key="k") as c:
            for event in c.messages.stream(**body):
                events.append(event)
        out["code"] = grpc.StatusCode.OK
    except SidecarAPIError as exc:
        out["code"] = exc.code
        out["error_type"] = exc.type


def _start_threads(
    sp: SidecarProcess, body: dict[str, Any]
) -> tuple[list[threading.Thread], dict[str, Any], dict[str, Any]]:
    http_out: dict[str, Any] = {}
    grpc_out: dict[str, Any] = {}
    threads = [
        threading.Thread(target=_http_stream, args=(sp.http_url, body, http_out)),
        threading.Thread(target=_grpc_stream, args=(sp.grpc_target, body, grpc_out)),
    ]
    for t in threads:
        t.start()
    return threads, http_out, grpc_out


def _wait_in_flight(sp: SidecarProcess, outs: list[dict[str, Any]]) -> None:
    # The streams have started (one in flight per output) before the signal.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        metrics = httpx.get(sp.admin_url + "/metrics").text
        line = [
            ln
            for ln in metrics.splitlines()
            if ln.startswith("sidecar_requests_in_flight") and 'operation="' in ln
        ]
        if sum(float(ln.rsplit(" ", 1)[1]) for ln in line) >= len(outs):
            return
        time.sleep(0.02)
    raise AssertionError("streams did not start")


def test_sigterm_lets_live_streams_finish_and_keeps_serving(tmp_path: Path) -> None:
    sp = start_sidecar("--config", str(_config(tmp_path, drain=20)))
    try:
        threads, http_out, grpc_out = _start_threads(sp, _slow())
        _wait_in_flight(sp, [http_out, grpc_out])
        sp.proc.send_signal(signal.SIGTERM)
        # Readiness goes false at once; the local app is still served while draining.
        deadline = time.monotonic() + 5
        while httpx.get(sp.admin_url + "/readyz").status_code != 503:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert "\nsidecar_ready 0.0\n" in httpx.get(sp.admin_url + "/metrics").text  # the gauge too
        late = httpx.post(
            sp.http_url + "/v1/messages",
            json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "late"}]},
            headers={"x-api-key": "k"},
        )
        assert late.status_code == 200
        for t in threads:
            t.join(30)
        assert sp.proc.wait(30) == 0
    finally:
        sp.stop()
    assert http_out["status"] == 200 and http_out["events"][-1] == {"type": "message_stop"}
    assert grpc_out["code"] == grpc.StatusCode.OK and grpc_out["events"][-1] == {"type": "message_stop"}
    deltas = [e for e in http_out["events"] if e["type"] == "content_block_delta"]
    assert len(deltas) == 12  # nothing cut


def test_drain_deadline_ends_streams_well_formed(tmp_path: Path) -> None:
    sp = start_sidecar("--config", str(_config(tmp_path, drain=0.5)))
    try:
        threads, http_out, grpc_out = _start_threads(sp, _slow(words=200, gap_ms=200))
        json_out: dict[str, Any] = {}

        def slow_json() -> None:
            body = {
                "model": "m",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "[mock ttft_ms=20000] wait"}],
            }
            json_out["r"] = httpx.post(
                sp.http_url + "/v1/messages", json=body, headers={"x-api-key": "k"}, timeout=60
            )

        threads.append(threading.Thread(target=slow_json))
        threads[-1].start()
        _wait_in_flight(sp, [http_out, grpc_out])
        time.sleep(0.2)
        sp.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        assert sp.proc.wait(30) == 0
    finally:
        sp.stop()
    # HTTP stream: status 200 was sent, so it ends with a spec-shaped error event.
    last = http_out["events"][-1]
    assert last["type"] == "error" and last["error"]["type"] == "overloaded_error"
    assert "shutting down" in last["error"]["message"]
    # gRPC stream: an error event, then UNAVAILABLE (retryable).
    assert grpc_out["events"][-1]["type"] == "error"
    assert grpc_out["code"] == grpc.StatusCode.UNAVAILABLE and grpc_out["error_type"] == "overloaded_error"
    # A JSON call still waiting: a retryable 529 with an Anthropic envelope.
    r = json_out["r"]
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"


def _words(sp: SidecarProcess) -> int:
    r = httpx.post(
        sp.http_url + "/v1/messages",
        json={"model": "m", "max_tokens": 500, "messages": [{"role": "user", "content": "count"}]},
        headers={"x-api-key": "k"},
    )
    return int(r.json()["usage"]["output_tokens"])


def _reloads(sp: SidecarProcess, result: str) -> float:
    for line in httpx.get(sp.admin_url + "/metrics").text.splitlines():
        if line.startswith(f'sidecar_config_reloads_total{{result="{result}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


_wait = wait_until


def test_sighup_reload_keeps_in_flight_calls_and_refuses_bad_configs(tmp_path: Path) -> None:
    path = _config(tmp_path, words=5)
    sp = start_sidecar("--config", str(path))
    try:
        assert _words(sp) == 5
        out: dict[str, Any] = {}
        t = threading.Thread(target=_http_stream, args=(sp.http_url, _slow(words=10, gap_ms=100), out))
        t.start()
        _wait_in_flight(sp, [out])
        # A bad file is refused with a log line and a metric; the old config stays.
        path.write_text(CONFIG.format(drain=10, words="many"))
        sp.proc.send_signal(signal.SIGHUP)
        assert _wait(lambda: _reloads(sp, "error") >= 1)
        assert _words(sp) == 5
        assert any("reload refused" in line and "words" in line for line in sp.lines)
        # A good file: new calls get it; the stream in flight finishes on the old snapshot.
        path.write_text(CONFIG.format(drain=10, words=9))
        sp.proc.send_signal(signal.SIGHUP)
        assert _wait(lambda: _words(sp) == 9)
        t.join(30)
        assert out["events"][-1] == {"type": "message_stop"}
        assert len([e for e in out["events"] if e["type"] == "content_block_delta"]) == 10
    finally:
        sp.stop()


def test_changed_file_is_reloaded_without_a_signal(tmp_path: Path) -> None:
    path = _config(tmp_path, words=4)
    sp = start_sidecar("--config", str(path))
    try:
        assert _words(sp) == 4
        # As a ConfigMap update does: a new file swapped in under the same name.
        fresh = tmp_path / "sidecar.yaml.new"
        fresh.write_text(CONFIG.format(drain=10, words=6))
        fresh.replace(path)
        assert _wait(lambda: _words(sp) == 6)
        assert _reloads(sp, "ok") >= 1
    finally:
        sp.stop()


@pytest.mark.parametrize("value", ["abc", "-1"])
def test_bad_drain_timeout_env(value: str) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    r = subprocess.run(
        [sys.executable, "-m", "sidecar", "--http-port", "0", "--no-grpc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"SIDECAR_DRAIN_TIMEOUT": value, "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 1 and "drain" in r.stderr.lower()
