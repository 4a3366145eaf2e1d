"""Upstream pacing end to end: a fake Anthropic API with a real token-bucket rate limit, sending
the API's ``anthropic-ratelimit-requests-*`` headers, behind a sidecar process.

With pacing the sidecar holds requests back until the upstream's budget has room, so a burst
gets through without one refusal; with pacing off the same burst is refused in part.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import SidecarProcess, start_sidecar
from tests.fakes.anthropic_api import FakeAnthropic, Plan, Recorded

LIMIT = 120  # requests per minute: the bucket refills 2 per second
BODY = {"model": "claude-paced", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


class RateLimitedUpstream:
    """The API's documented model: a bucket of ``LIMIT`` refilled at ``LIMIT / 60`` per second;
    every answer says what is left; an empty bucket answers 429 with ``retry-after``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.level = float(LIMIT)
        self.at = time.monotonic()
        self.ok = 0
        self.refused = 0

    def set_level(self, level: float) -> None:
        with self.lock:
            self.level, self.at, self.ok, self.refused = level, time.monotonic(), 0, 0

    def __call__(self, rec: Recorded) -> Plan:
        with self.lock:
            now = time.monotonic()
            rate = LIMIT / 60
            self.level = min(LIMIT, self.level + (now - self.at) * rate)
            self.at = now
            allowed = self.level >= 1
            if allowed:
                self.level -= 1
                self.ok += 1
            else:
                self.refused += 1
            reset = time.time() + (LIMIT - self.level) / rate
            headers = {
                "anthropic-ratelimit-requests-limit": str(LIMIT),
                "anthropic-ratelimit-requests-remaining": str(math.floor(self.level)),
                "anthropic-ratelimit-requests-reset": datetime.fromtimestamp(
                    math.ceil(reset), tz=UTC
                ).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            if allowed:
                return Plan(headers=headers)
            headers["retry-after"] = str(math.ceil((1 - self.level) / rate))
            error = {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}}
            return Plan(status=429, body=json.dumps(error).encode(), headers=headers)


@pytest.fixture(scope="module")
def limited() -> Iterator[tuple[FakeAnthropic, RateLimitedUpstream]]:
    fake = FakeAnthropic().start()
    bucket = RateLimitedUpstream()
    fake.reset(bucket)
    yield fake, bucket
    fake.stop()


def _sidecar(tmp: Path, base_url: str, pacing: str) -> SidecarProcess:
    path = tmp / "sidecar.yaml"
    path.write_text(
        f"""
upstreams:
  patient: {{provider: anthropic, base_url: "{base_url}", api_key: up-key, pacing: {pacing}}}
  impatient:
    provider: anthropic
    base_url: "{base_url}"
    api_key: up-key
    pacing: {{reserve: 0, max_wait: 0.2}}
routes:
  - {{match: claude-impatient, upstream: impatient}}
  - {{match: "*", upstream: patient}}
"""
    )
    return start_sidecar("--config", str(path), "--no-grpc", expect_grpc=False)


@pytest.fixture(scope="module")
def paced(
    limited: tuple[FakeAnthropic, RateLimitedUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SidecarProcess]:
    sp = _sidecar(tmp_path_factory.mktemp("paced"), limited[0].base_url, "{reserve: 0, max_wait: 10}")
    yield sp
    sp.stop()


def _burst(sp: SidecarProcess, n: int, model: str = "claude-paced") -> list[httpx.Response]:
    with httpx.Client(base_url=sp.http_url, timeout=30) as client:
        # One request first: the sidecar learns the budget from its answer.
        first = client.post("/v1/messages", json={**BODY, "model": model})
        with ThreadPoolExecutor(n) as pool:
            rest = list(
                pool.map(lambda _: client.post("/v1/messages", json={**BODY, "model": model}), range(n))
            )
    return [first, *rest]


def _metric(sp: SidecarProcess, name: str, **labels: str) -> float:
    text = httpx.get(sp.admin_url + "/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_burst_is_paced_instead_of_refused(
    paced: SidecarProcess, limited: tuple[FakeAnthropic, RateLimitedUpstream]
) -> None:
    _, bucket = limited
    bucket.set_level(3)  # 3 left: the warm-up and two more fit now, the other four are paced
    started = time.monotonic()
    answers = _burst(paced, 6)
    took = time.monotonic() - started
    assert [r.status_code for r in answers] == [200] * 7
    assert bucket.refused == 0 and bucket.ok == 7
    # Four held back, 0.5 s apart (2 per second): about 2 s in all.
    assert took >= 1.5
    assert _metric(paced, "sidecar_upstream_paced_total", outcome="waited", upstream="patient") >= 4
    # Without admission the upstream's own ratelimit headers reach the client as they are.
    assert answers[-1].headers["anthropic-ratelimit-requests-limit"] == str(LIMIT)


def test_without_pacing_the_same_burst_is_refused_in_part(
    limited: tuple[FakeAnthropic, RateLimitedUpstream], tmp_path: Path
) -> None:
    fake, bucket = limited
    sp = _sidecar(tmp_path, fake.base_url, "{enabled: false}")
    try:
        bucket.set_level(3)
        answers = _burst(sp, 6)
    finally:
        sp.stop()
    assert bucket.refused >= 3 and sorted(r.status_code for r in answers).count(429) == bucket.refused


def test_retry_after_holds_the_shared_budget(
    paced: SidecarProcess, limited: tuple[FakeAnthropic, RateLimitedUpstream]
) -> None:
    fake, bucket = limited
    bucket.set_level(0)
    url = paced.http_url + "/v1/messages"
    # The upstream refuses and says when to come back; the sidecar remembers it for that key.
    assert httpx.post(url, json=BODY).status_code == 429
    before = len(fake.requests)
    # A route that may not wait that long is refused by the sidecar itself, without a call.
    refused = httpx.post(url, json={**BODY, "model": "claude-impatient"})
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    assert "impatient" in refused.json()["error"]["message"] and int(refused.headers["retry-after"]) >= 1
    assert len(fake.requests) == before
    # One that may wait goes out once the upstream has room again, and is answered.
    assert httpx.post(url, json=BODY, timeout=30).status_code == 200
    assert _metric(paced, "sidecar_upstream_paced_total", outcome="refused", upstream="impatient") >= 1
