"""Admission across config reloads, and its metrics: windows and counters carry over a reload,
new limits apply at once, and /metrics shows decisions per key name (never the key)."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import httpx

from tests.conftest import SidecarProcess, start_sidecar, wait_until

KEY = "sk-reload-key-1"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def _write(path: Path, rpm: int, extra_tier: str = "") -> None:
    path.write_text(
        f"""
upstreams:
  m: {{provider: mock}}
routes:
  - {{match: "*", upstream: m}}
lifecycle: {{watch_config: false}}
admission:
  queue: {{max_wait: 0}}
  tiers:
    basic: {{requests_per_minute: {rpm}}}
    {extra_tier}
  keys:
    - {{name: team-a, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}, tier: basic}}
"""
    )


def _metrics(sp: SidecarProcess) -> dict[str, float]:
    out = {}
    for line in httpx.get(sp.admin_url + "/metrics").text.splitlines():
        if line.startswith(("sidecar_admission_", "sidecar_config_reloads_total")):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _reload(sp: SidecarProcess) -> None:
    before = _metrics(sp).get('sidecar_config_reloads_total{result="ok"}', 0.0)
    sp.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: _metrics(sp).get('sidecar_config_reloads_total{result="ok"}', 0.0) > before)


def test_reload_keeps_windows_and_counters_and_applies_new_limits(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    _write(path, rpm=2)
    sp = start_sidecar("--config", str(path), "--no-grpc", expect_grpc=False)
    try:
        url = sp.http_url + "/v1/messages"
        key = {"x-api-key": KEY}
        assert [httpx.post(url, json=BODY, headers=key).status_code for _ in range(3)] == [200, 200, 429]
        assert httpx.post(url, json=BODY, headers={"x-api-key": "sk-nope"}).status_code == 401
        m = _metrics(sp)
        assert m['sidecar_admission_decisions_total{key="team-a",outcome="admitted",reason=""}'] == 2
        assert m['sidecar_admission_decisions_total{key="team-a",outcome="refused",reason="requests"}'] == 1
        assert m['sidecar_admission_decisions_total{key="",outcome="refused",reason="authentication"}'] == 1
        assert m['sidecar_admission_backend_up{backend="memory"}'] == 1
        # An unrelated change: the key's window is not reset by the reload.
        _write(path, rpm=2, extra_tier="pro: {requests_per_minute: 50}")
        _reload(sp)
        assert httpx.post(url, json=BODY, headers=key).status_code == 429
        m = _metrics(sp)  # counters go on from where they were
        assert m['sidecar_admission_decisions_total{key="team-a",outcome="refused",reason="requests"}'] == 2
        # A higher limit applies to the same window at once: 2 of 5 used, 3 left.
        _write(path, rpm=5)
        _reload(sp)
        codes = [httpx.post(url, json=BODY, headers=key).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert (
            _metrics(sp)['sidecar_admission_decisions_total{key="team-a",outcome="admitted",reason=""}'] == 5
        )
        text = httpx.get(sp.admin_url + "/metrics").text
        assert KEY not in text and "sk-nope" not in text
    finally:
        sp.stop()
