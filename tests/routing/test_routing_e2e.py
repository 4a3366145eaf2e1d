"""Route policies end to end, through both doors, against fake Anthropic upstreams that fail
on purpose: retries, fallbacks, invisible retries on streams, sidecar chains and loops."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sidecar.client import Client
from sidecar.core.sse import SSESplitter
from tests.fakes.anthropic_api import FakeAnthropic, Plan, Recorded, sse, text_stream
from tests.inprocess import ThreadedSidecar
from tests.telemetry.conftest import Delta

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}
H = {"x-api-key": "k"}
OVERLOADED = sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


def _error(status: int, etype: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": etype, "message": message}}).encode()


@pytest.fixture(scope="module")
def backup() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def routed(
    fake_anthropic: FakeAnthropic, backup: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedSidecar]:
    path: Path = tmp_path_factory.mktemp("routes") / "sidecar.yaml"
    path.write_text(
        f"""
upstreams:
  primary: {{provider: anthropic, base_url: "{fake_anthropic.base_url}"}}
  backup: {{provider: anthropic, base_url: "{backup.base_url}"}}
routes:
  - match: "claude-*"
    policy:
      groups:
        - targets: [{{upstream: primary}}]
        - targets: [{{upstream: backup}}]
      fallback_on: [529]
      retry: {{max_attempts: 2, base_backoff: 0.01, max_backoff: 0.05}}
      budget: {{max_retries_per_request: 3}}
      breaker: {{enabled: false}}
      hold_limit: 5
"""
    )
    sp = ThreadedSidecar("--config", str(path))
    yield sp
    sp.stop()


@pytest.fixture()
def upstreams(
    fake_anthropic: FakeAnthropic, backup: FakeAnthropic
) -> Iterator[tuple[FakeAnthropic, FakeAnthropic]]:
    fake_anthropic.reset()
    backup.reset()
    yield fake_anthropic, backup
    fake_anthropic.reset()
    backup.reset()


def _sequence(*plans: Plan) -> object:
    """A planner answering with ``plans`` in turn, then the last one forever."""
    seen: list[Recorded] = []

    def planner(rec: Recorded) -> Plan:
        seen.append(rec)
        return plans[min(len(seen), len(plans)) - 1]

    return planner


def test_429_with_retry_after_is_retried(
    routed: ThreadedSidecar, upstreams: tuple[FakeAnthropic, FakeAnthropic]
) -> None:
    primary, backup = upstreams
    primary.reset(
        _sequence(
            Plan(status=429, body=_error(429, "rate_limit_error", "slow down"), headers={"retry-after": "0"}),
            Plan(),
        )
    )  # type: ignore[arg-type]
    d = Delta(routed.admin_url)
    r = httpx.post(routed.http_url + "/v1/messages", json=BODY, headers=H)
    assert r.status_code == 200, r.text
    assert r.headers["x-sidecar-attempts"] == "2" and r.headers["x-sidecar-upstream"] == "primary"
    assert len(primary.requests) == 2 and backup.requests == []
    # One retry, counted on the target tried again.
    assert d.wait("sidecar_upstream_retries_total", 1, upstream="primary") == 1
    assert d("sidecar_upstream_retries_total") == 1


def test_529_falls_back_to_the_next_group(
    routed: ThreadedSidecar, upstreams: tuple[FakeAnthropic, FakeAnthropic]
) -> None:
    primary, backup = upstreams
    primary.reset(lambda rec: Plan(status=529, body=_error(529, "overloaded_error", "Overloaded")))
    d = Delta(routed.admin_url)
    r = httpx.post(routed.http_url + "/v1/messages", json=BODY, headers=H)
    assert r.status_code == 200 and r.headers["x-sidecar-upstream"] == "backup"
    # A fallback is an attempt after the first too.
    assert d.wait("sidecar_upstream_retries_total", 1, upstream="backup") == 1
    assert d("sidecar_upstream_retries_total", upstream="primary") == 0
    assert len(primary.requests) == 1 and len(backup.requests) == 1
    # The same request reached both upstreams unchanged.
    assert primary.requests[0].body == backup.requests[0].body


def _stream_events(url: str) -> tuple[httpx.Response, list[dict[str, object]]]:
    with httpx.stream("POST", url + "/v1/messages", json={**BODY, "stream": True}, headers=H) as r:
        raw = b"".join(r.iter_raw())
    return r, [e.data for e in SSESplitter().feed(raw)]


def test_in_band_error_before_first_delta_is_retried_invisibly(
    routed: ThreadedSidecar, upstreams: tuple[FakeAnthropic, FakeAnthropic]
) -> None:
    primary, backup = upstreams
    # HTTP 200, message_start, then an in-band overloaded error: the Anthropic overload case.
    primary.reset(lambda rec: Plan(chunks=[*text_stream("x")[:2], OVERLOADED]))
    expected = text_stream("Answer from the backup.")
    backup.reset(lambda rec: Plan(chunks=expected))
    r, events = _stream_events(routed.http_url)
    assert r.status_code == 200
    assert events == [e.data for e in SSESplitter().feed(b"".join(expected))]
    assert [e["type"] for e in events].count("message_start") == 1
    assert len(primary.requests) == 1 and len(backup.requests) == 1


def test_error_after_first_delta_is_never_retried(
    routed: ThreadedSidecar, upstreams: tuple[FakeAnthropic, FakeAnthropic]
) -> None:
    primary, backup = upstreams
    primary.reset(lambda rec: Plan(chunks=[*text_stream("first words then trouble")[:5], OVERLOADED]))
    r, events = _stream_events(routed.http_url)
    assert events[-1]["type"] == "error"
    deltas = [e for e in events if e["type"] == "content_block_delta"]
    assert len(deltas) == 2  # exactly what the upstream sent: no duplicate, none missing
    assert len(primary.requests) == 1 and backup.requests == []


def test_all_targets_failing_surfaces_the_last_upstream_error(
    routed: ThreadedSidecar, upstreams: tuple[FakeAnthropic, FakeAnthropic]
) -> None:
    primary, backup = upstreams
    primary.reset(lambda rec: Plan(status=500, body=_error(500, "api_error", "primary broke")))
    backup.reset(
        lambda rec: Plan(
            status=503, body=_error(503, "overloaded_error", "backup busy"), headers={"retry-after": "3"}
        )
    )
    r = httpx.post(routed.http_url + "/v1/messages", json=BODY, headers=H)
    assert r.status_code == 503
    assert r.json()["error"] == {"type": "overloaded_error", "message": "backup busy"}
    assert r.headers["retry-after"] == "3"
    assert r.headers["x-should-retry"] == "false"  # the sidecar already retried
    # Two tries per group (500 and 503 are retryable), the backup group after the primary's.
    assert len(primary.requests) == 2 and len(backup.requests) == 2


def test_grpc_door_gets_the_same_invisible_retry(
    routed: ThreadedSidecar, upstreams: tuple[FakeAnthropic, FakeAnthropic]
) -> None:
    primary, backup = upstreams
    primary.reset(lambda rec: Plan(chunks=[*text_stream("x")[:2], OVERLOADED]))
    expected = text_stream("Answer from the backup.")
    backup.reset(lambda rec: Plan(chunks=expected))
    with Client(routed.grpc_target, api_key="k") as c:
        events = list(c.messages.stream(**BODY))
    assert events == [e.data for e in SSESplitter().feed(b"".join(expected))]
    primary.reset(lambda rec: Plan(status=529, body=_error(529, "overloaded_error", "Overloaded")))
    backup.reset()
    with Client(routed.grpc_target, api_key="k") as c:
        message = c.messages.create(**BODY)
    assert message["type"] == "message"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sidecar_chain_counts_hops(upstreams: tuple[FakeAnthropic, FakeAnthropic]) -> None:
    primary, _ = upstreams
    inner = ThreadedSidecar("--upstream", primary.base_url, "--no-grpc")
    outer = ThreadedSidecar("--upstream", inner.http_url, "--no-grpc")
    try:
        r = httpx.post(outer.http_url + "/v1/messages", json=BODY, headers=H)
        assert r.status_code == 200
        assert primary.requests[-1].headers["sidecar-hops"] == "2"
    finally:
        outer.stop()
        inner.stop()


def test_loop_is_refused_with_a_clear_error() -> None:
    port = _free_port()
    sp = ThreadedSidecar("--upstream", f"http://127.0.0.1:{port}", "--http-port", str(port), "--no-grpc")
    try:
        r = httpx.post(sp.http_url + "/v1/messages", json=BODY, headers=H, timeout=30)
        assert r.status_code == 508
        assert "already passed 8 sidecars" in r.json()["error"]["message"]
        assert r.headers["x-should-retry"] == "false"
    finally:
        sp.stop()


def test_server_timing_names_each_hop(upstreams: tuple[FakeAnthropic, FakeAnthropic]) -> None:
    primary, _ = upstreams
    inner = ThreadedSidecar("--upstream", primary.base_url, "--no-grpc")
    outer = ThreadedSidecar("--upstream", inner.http_url, "--no-grpc")
    try:
        r = httpx.post(outer.http_url + "/v1/messages", json=BODY, headers=H)
        entries = [e.strip() for e in r.headers["server-timing"].split(",")]
        assert [e.split(";")[0] for e in entries] == ["sidecar-1", "sidecar-2"]
        assert all(float(e.split("dur=")[1].split(";")[0]) >= 0 for e in entries)
    finally:
        outer.stop()
        inner.stop()


def test_client_timeout_caps_a_json_call(
    routed: ThreadedSidecar, upstreams: tuple[FakeAnthropic, FakeAnthropic]
) -> None:
    primary, backup = upstreams
    primary.reset(lambda rec: Plan(hang=True))
    started = time.monotonic()
    r = httpx.post(
        routed.http_url + "/v1/messages", json=BODY, headers={**H, "x-stainless-timeout": "1"}, timeout=30
    )
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"
    assert time.monotonic() - started < 20
    assert primary.wait_for(lambda: bool(primary.requests) and primary.requests[-1].closed_early)


def test_breaker_states_are_exported(
    fake_anthropic: FakeAnthropic, backup: FakeAnthropic, tmp_path: Path
) -> None:
    fake_anthropic.reset(lambda rec: Plan(status=500, body=_error(500, "api_error", "down")))
    backup.reset()
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        f"""
upstreams:
  primary: {{provider: anthropic, base_url: "{fake_anthropic.base_url}"}}
  backup: {{provider: anthropic, base_url: "{backup.base_url}"}}
routes:
  - match: "claude-*"
    policy:
      groups:
        - targets: [{{upstream: primary}}]
        - targets: [{{upstream: backup}}]
      retry: {{max_attempts: 1}}
      breaker: {{consecutive_failures: 2, cooldown: 60}}
"""
    )
    sp = ThreadedSidecar("--config", str(path))
    try:

        def state(upstream: str) -> str:
            for line in httpx.get(sp.admin_url + "/metrics").text.splitlines():
                if (
                    line.startswith("sidecar_breaker_state{")
                    and f'upstream="{upstream}"' in line
                    and line.endswith(" 1.0")
                ):
                    return line.split('state="')[1].split('"')[0]
            return "missing"

        assert state("primary") == "closed"
        for _ in range(2):
            assert (
                httpx.post(sp.http_url + "/v1/messages", json=BODY, headers=H).status_code == 200
            )  # the backup answers
        assert state("primary") == "open" and state("backup") == "closed"
        # An open target is skipped: the next call goes straight to the backup.
        before = len(fake_anthropic.requests)
        r = httpx.post(sp.http_url + "/v1/messages", json=BODY, headers=H)
        assert r.status_code == 200 and r.headers["x-sidecar-upstream"] == "backup"
        assert len(fake_anthropic.requests) == before
    finally:
        sp.stop()
        fake_anthropic.reset()
        backup.reset()
