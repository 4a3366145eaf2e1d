"""Admission through the real doors: keys, permissions, limits and their headers, the SDK's retry."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import anthropic
import grpc
import httpx
import pytest

from sidecar.client import Client, SidecarAPIError
from tests.conftest import SidecarProcess, start_sidecar

GOOD = "sk-good-key-1"
SOLO = "sk-solo-key-2"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    path: Path = tmp_path_factory.mktemp("adm") / "sidecar.yaml"
    path.write_text(
        f"""
upstreams:
  m: {{provider: mock}}
routes:
  - {{match: "*", upstream: m}}
admission:
  period: 2.0
  queue: {{max_wait: 0}}
  tiers:
    basic: {{requests_per_minute: 2, models: ["claude-*"]}}
    solo: {{concurrency: 1}}
  keys:
    - {{name: team-a, sha256: {hashlib.sha256(GOOD.encode()).hexdigest()}, tier: basic}}
    - {{name: team-b, sha256: {hashlib.sha256(SOLO.encode()).hexdigest()}, tier: solo}}
"""
    )
    sp = start_sidecar("--config", str(path))
    yield sp
    sp.stop()


def test_keys_and_permissions(gated: SidecarProcess) -> None:
    url = gated.http_url + "/v1/messages"
    for headers in ({}, {"x-api-key": "sk-wrong"}, {"authorization": "Bearer sk-wrong"}):
        r = httpx.post(url, json=BODY, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        assert "sk-wrong" not in r.text
    r = httpx.post(url, json={**BODY, "model": "gpt-4o"}, headers={"x-api-key": GOOD})
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"


def test_rate_limit_headers_and_sdk_retry(gated: SidecarProcess) -> None:
    import time

    time.sleep(2.1)  # a fresh window
    url = gated.http_url + "/v1/messages"
    first = httpx.post(url, json=BODY, headers={"x-api-key": GOOD})
    assert first.status_code == 200
    assert first.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert first.headers["anthropic-ratelimit-requests-remaining"] == "1"
    assert first.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    httpx.post(url, json=BODY, headers={"x-api-key": GOOD})
    refused = httpx.post(url, json=BODY, headers={"x-api-key": GOOD})
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    assert float(refused.headers["retry-after"]) > 0
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
    # The SDK's own retry honours retry-after and gets through once the window passes.
    client = anthropic.Anthropic(base_url=gated.http_url, api_key=GOOD, max_retries=3)
    message = client.messages.create(**BODY)  # type: ignore[arg-type]
    assert message.type == "message"


def test_grpc_statuses(gated: SidecarProcess) -> None:
    import time

    with Client(gated.grpc_target, api_key="sk-wrong") as c, pytest.raises(SidecarAPIError) as info:
        c.messages.create(**BODY)
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    time.sleep(2.1)
    with Client(gated.grpc_target, api_key=GOOD) as c:
        c.messages.create(**BODY)
        c.messages.create(**BODY)
        with pytest.raises(SidecarAPIError) as info:
            c.messages.create(**BODY)
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and info.value.type == "rate_limit_error"


def test_concurrency_limit_refuses_the_extra_stream_and_cuts_none(gated: SidecarProcess) -> None:
    import threading

    from sidecar.core.sse import SSESplitter

    slow = {
        **BODY,
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "[mock words=10 words_per_delta=1 gap_ms=100] go"}],
    }
    out: dict[str, object] = {}

    def stream() -> None:
        with httpx.stream(
            "POST", gated.http_url + "/v1/messages", json=slow, headers={"x-api-key": SOLO}, timeout=30
        ) as r:
            out["events"] = [e.data for e in SSESplitter().feed(b"".join(r.iter_raw()))]

    t = threading.Thread(target=stream)
    t.start()
    import time

    deadline = time.monotonic() + 10
    refused = None
    while time.monotonic() < deadline:
        r = httpx.post(gated.http_url + "/v1/messages", json=BODY, headers={"x-api-key": SOLO})
        if r.status_code == 429:
            refused = r
            break
        time.sleep(0.02)
    t.join(30)
    assert refused is not None and refused.json()["error"]["type"] == "rate_limit_error"
    events = out["events"]
    assert isinstance(events, list) and events[-1] == {"type": "message_stop"}
    assert len([e for e in events if e["type"] == "content_block_delta"]) == 10
    # The slot is free again once the stream ended.
    assert (
        httpx.post(gated.http_url + "/v1/messages", json=BODY, headers={"x-api-key": SOLO}).status_code == 200
    )


def test_non_loopback_without_keys_refuses_to_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    r = subprocess.run(
        [sys.executable, "-m", "sidecar", "--host", "0.0.0.0", "--http-port", "0", "--no-grpc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "not loopback" in r.stderr and "auth: none" in r.stderr
    path = tmp_path / "open.yaml"
    path.write_text("auth: none\nupstreams:\n  m: {provider: mock}\nroutes:\n  - {match: '*', upstream: m}\n")
    sp = start_sidecar("--config", str(path), "--host", "0.0.0.0", "--no-grpc", expect_grpc=False)
    try:
        assert httpx.get(sp.http_url.replace("0.0.0.0", "127.0.0.1") + "/healthz").status_code == 200
    finally:
        sp.stop()
