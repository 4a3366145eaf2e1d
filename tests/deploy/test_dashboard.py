"""The Grafana dashboard against a real Prometheus (Debian's package) scraping a real sidecar.

The sidecar serves a policy route whose first upstream fails (retries, a fallback, its breaker
opens) and whose backup answers with rate-limit headers (pacing), behind admission on a real
redis-server with a key that gets refused, through both doors, JSON and streams. Prometheus
scrapes it with static ``namespace``/``pod`` labels, as a PodMonitor would add them. Then every
panel's query, template variables substituted, must return series with the labels its legend
names, and the values the scenario produced.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar.client import Client
from tests.admission import conftest as admission
from tests.admission.conftest import RedisServer, free_port
from tests.conftest import SidecarProcess, start_sidecar, stop_process
from tests.deploy.test_alerts import _alerts
from tests.deploy.test_kustomize import _render
from tests.deploy.test_manifests import DEPLOY
from tests.fakes.anthropic_api import FakeAnthropic, Plan, Recorded
from tests.telemetry.test_metrics import usage_stream

DASHBOARD = DEPLOY / "monitoring" / "grafana-dashboard.json"
NAMESPACE, POD = "test-ns", "app-0"
GOOD, SOLO = "sk-dash-good", "sk-dash-solo"
redis_server = admission.redis_server


def _panels() -> list[dict[str, Any]]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def _targets() -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in _panels() for t in p["targets"]]


def test_dashboard_shape() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "pod", "model"}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Traffic", "Latency", "Tokens", "Upstreams", "Admission"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for title, target in _targets():
        assert target["datasource"]["uid"] == "${datasource}", title
        expr = target["expr"]
        # No padding that would hide a missing metric.
        assert " or " not in expr and "vector(" not in expr, title
        assert 'namespace=~"$namespace"' in expr and 'pod=~"$pod"' in expr, title


def test_dashboard_configmap_renders_with_the_grafana_label() -> None:
    [cm] = [d for d in _render(DEPLOY / "monitoring") if d["kind"] == "ConfigMap"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["grafana-dashboard.json"]) == json.loads(DASHBOARD.read_text())


def _substitute(expr: str) -> str:
    return (
        expr.replace("$namespace", NAMESPACE)
        .replace("$pod", POD)
        .replace("$model", ".*")
        .replace("$__rate_interval", "1m")
    )


# -- the real parts -------------------------------------------------------------------------------
def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Upstream:
    """Answers with rate-limit headers (the answer to a ``claude-paced`` request says the requests
    budget is spent for the next second, so the next attempt waits) and streams with every token
    type. A failing one fails every ``claude-down`` attempt and every other ``claude-json`` one
    (sent one at a time: each is retried once)."""

    def __init__(self, failing: bool) -> None:
        self.failing = failing
        self.lock = threading.Lock()
        self.count = 0

    def __call__(self, rec: Recorded) -> Plan:
        body = rec.json()
        with self.lock:
            if body["model"] == "claude-json":
                self.count += 1
            fail = self.failing and (
                body["model"] == "claude-down" or (body["model"] == "claude-json" and self.count % 2 == 1)
            )
        if fail:
            error = {"type": "error", "error": {"type": "api_error", "message": "failing on purpose"}}
            return Plan(status=500, body=json.dumps(error).encode())
        spent = body["model"] == "claude-paced"
        headers = {
            "anthropic-ratelimit-requests-limit": "6000",
            "anthropic-ratelimit-requests-remaining": "0" if spent else "6000",
            "anthropic-ratelimit-requests-reset": _rfc3339(time.time() + (1 if spent else 0)),
        }
        if body.get("stream"):
            return Plan(chunks=usage_stream(body["model"]), headers=headers)
        return Plan(headers=headers)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FakeAnthropic, FakeAnthropic]]:
    primary, backup = FakeAnthropic().start(), FakeAnthropic().start()
    primary.reset(Upstream(failing=True))
    backup.reset(Upstream(failing=False))
    yield primary, backup
    primary.stop()
    backup.stop()


@pytest.fixture(scope="module")
def sidecar(
    upstreams: tuple[FakeAnthropic, FakeAnthropic],
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SidecarProcess]:
    primary, backup = upstreams
    path = tmp_path_factory.mktemp("dashboard") / "sidecar.yaml"
    path.write_text(
        f"""
upstreams:
  primary: {{provider: anthropic, base_url: "{primary.base_url}"}}
  backup: {{provider: anthropic, base_url: "{backup.base_url}"}}
routes:
  - match: claude-down
    policy:
      groups:
        - targets: [{{upstream: primary}}]
        - targets: [{{upstream: backup}}]
      retry: {{max_attempts: 1}}
      breaker: {{consecutive_failures: 2, cooldown: 600}}
  - match: "claude-*"
    policy:
      groups:
        - targets: [{{upstream: primary}}]
        - targets: [{{upstream: backup}}]
      retry: {{max_attempts: 2, base_backoff: 0.01, max_backoff: 0.05}}
      breaker: {{consecutive_failures: 5, cooldown: 600}}
admission:
  backend: {{kind: redis, url: "{redis_server.url}", key_prefix: "dashboard:", fail_open: false, timeout: 2.0}}
  queue: {{max_wait: 0}}
  tiers:
    open: {{requests_per_minute: 1000}}
    solo: {{requests_per_minute: 1}}
  keys:
    - {{name: team-a, sha256: {hashlib.sha256(GOOD.encode()).hexdigest()}, tier: open}}
    - {{name: team-b, sha256: {hashlib.sha256(SOLO.encode()).hexdigest()}, tier: solo}}
"""
    )
    sp = start_sidecar("--config", str(path))
    yield sp
    sp.stop()


@pytest.fixture(scope="module")
def prometheus(sidecar: SidecarProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on a free loopback port scraping the sidecar every second, with the
    alert rules loaded; its base URL."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    assert Path(binary).exists(), "make test installs Debian's prometheus package"
    root = tmp_path_factory.mktemp("prometheus")
    admin = sidecar.admin_url.removeprefix("http://")
    (root / "prometheus.yml").write_text(
        f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{DEPLOY / "monitoring" / "sidecar.rules.yml"}"]
scrape_configs:
  - job_name: messages-sidecar
    static_configs:
      - targets: ["{admin}"]
        labels: {{namespace: "{NAMESPACE}", pod: "{POD}"}}
"""
    )
    port = free_port()
    with (root / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (root / "prometheus.log").read_text()
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus did not get ready"
            time.sleep(0.1)
        yield url
    finally:
        stop_process(proc)


def _scenario(sp: SidecarProcess) -> None:
    url = sp.http_url + "/v1/messages"

    def post(model: str, key: str = GOOD, stream: bool = False) -> httpx.Response:
        body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
        return httpx.post(url, json={**body, "stream": stream}, headers={"x-api-key": key}, timeout=30)

    # claude-down: the primary fails, the backup answers; after two failures the primary's
    # breaker on that route opens. claude-*: every other primary attempt fails and is retried.
    for _ in range(2):
        assert post("claude-down").status_code == 200
        assert post("claude-json").status_code == 200
    # A spent budget: the next attempt is held back (pacing).
    assert post("claude-paced").status_code == 200
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda s: post("claude-stream", stream=s).status_code, [True, False] * 4))
    assert results == [200] * 8
    with Client(sp.grpc_target, api_key=GOOD) as client:
        client.messages.create(
            model="claude-grpc", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        for _ in client.messages.stream(
            model="claude-grpc", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ):
            pass
    # Admission: the solo key's requests after its first in the minute are refused; an unknown
    # key too.
    assert post("claude-json", key=SOLO).status_code in (200, 429)
    assert post("claude-json", key=SOLO).status_code == 429
    assert post("claude-json", key="sk-unknown").status_code == 401


# What the scenario must show on each panel, beyond series with the legend's labels.
EXPECTED: dict[str, dict[str, set[str]]] = {
    "Requests/s by door, model, outcome": {
        "door": {"http", "grpc"},
        "outcome": {"success", "client_error"},
        "model": {"claude-json", "claude-stream", "claude-grpc"},
    },
    "Failed requests/s by error type": {"error_type": {"rate_limit_error", "authentication_error"}},
    "In flight": {"door": {"http", "grpc"}},
    "Ready (1) per pod": {"pod": {POD}},
    "Tokens/s by type": {"type": {"input", "output", "cache_read", "cache_creation", "thinking"}},
    "Attempts/s by upstream and outcome": {"upstream": {"primary", "backup"}},
    "Retries and fallbacks/s by route and upstream": {
        "route": {"claude-down", "claude-*"},
        "upstream": {"primary", "backup"},
    },
    "Upstream errors/s by upstream and error type": {"upstream": {"primary"}, "error_type": {"api_error"}},
    "Breaker state (1 = current)": {"route": {"claude-down", "claude-*"}, "state": {"open", "closed"}},
    "Pacing: attempts held back or refused/s": {"outcome": {"waited"}},
    "Decisions/s by outcome and reason": {"outcome": {"admitted", "refused"}, "reason": {"requests"}},
    "Limits backend up": {"backend": {"redis"}},
}
# Panels whose values the scenario makes non-zero (breaker state is 0 for other states).
NONZERO = {
    "Retries and fallbacks/s by route and upstream",
    "Pacing: attempts held back or refused/s",
    "Pacing: time held back (s/s)",
    "Limits backend up",
    "Ready (1) per pod",
}


def _wait_scraped(prometheus: str) -> None:
    """Until Prometheus has scraped the sidecar after now."""
    now = time.time()
    deadline = time.monotonic() + 30
    while not any(
        float(s["value"][1]) > now for s in _query(prometheus, 'timestamp(up{job="messages-sidecar"} == 1)')
    ):
        assert time.monotonic() < deadline, "prometheus does not scrape the sidecar"
        time.sleep(0.2)


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(prometheus + "/api/v1/query", params={"query": expr}, timeout=10)
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def _problems(prometheus: str) -> list[str]:
    """What is still missing from the panels (empty when every panel shows what it should)."""
    problems = []
    for title, target in _targets():
        series = _query(prometheus, _substitute(target["expr"]))
        if not series:
            problems.append(f"{title} [{target['refId']}]: no series")
            continue
        legend = set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]))
        keys = {k for s in series for k in s["metric"]}
        if keys != legend:
            problems.append(f"{title} [{target['refId']}]: labels {sorted(keys)}, legend {sorted(legend)}")
        for label, values in EXPECTED.get(title, {}).items():
            seen = {s["metric"].get(label, "") for s in series}
            if not values <= seen:
                problems.append(f"{title}: {label} {sorted(values - seen)} missing (got {sorted(seen)})")
        if title in NONZERO and not any(float(s["value"][1]) > 0 for s in series):
            problems.append(f"{title}: all zero")
    return problems


def test_every_panel_shows_the_scenario_on_a_real_prometheus(
    sidecar: SidecarProcess, prometheus: str
) -> None:
    # Twice, with scrapes between: a rate needs a counter seen before and after an increase.
    for _ in range(2):
        _wait_scraped(prometheus)
        _scenario(sidecar)
    deadline = time.monotonic() + 30
    while problems := _problems(prometheus):
        assert time.monotonic() < deadline, problems
        time.sleep(0.5)
    # The template variables' queries list what the scrape labelled.
    for name, value in (("namespace", NAMESPACE), ("pod", POD), ("model", "claude-json")):
        r = httpx.get(
            f"{prometheus}/api/v1/label/{name}/values", params={"match[]": "sidecar_requests_total"}
        )
        assert value in r.json()["data"], name
    # The alert rules loaded and evaluate in a real Prometheus.
    groups = httpx.get(prometheus + "/api/v1/rules").json()["data"]["groups"]
    rules = {rule["name"]: rule for g in groups for rule in g["rules"]}
    assert set(rules) == {a["alert"] for a in _alerts()}
    assert all(rule["health"] == "ok" for rule in rules.values()), rules


def exported_families(admin_url: str) -> set[str]:
    """The metric families on a sidecar's /metrics (from its TYPE lines)."""
    text = httpx.get(admin_url + "/metrics", timeout=10).text
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def family(name: str, families: set[str]) -> str | None:
    """The family a sample name belongs to (counters' _total, histograms' _bucket/_sum/_count)."""
    for suffix in ("", "_total", "_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in families:
            return name.removesuffix(suffix)
    return None


def test_every_metric_in_the_dashboard_and_rules_is_exported(sidecar: SidecarProcess) -> None:
    families = exported_families(sidecar.admin_url)
    used = {name for _, t in _targets() for name in re.findall(r"\bsidecar_[a-z_]+", t["expr"])}
    used |= {name for alert in _alerts() for name in re.findall(r"\bsidecar_[a-z_]+", alert["expr"])}
    assert {name for name in used if family(name, families) is None} == set()
