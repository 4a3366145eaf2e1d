"""--request-log: one JSON line per request, both doors; never keys or message content."""

from __future__ import annotations

import json
import time

import httpx

from sidecar.client import Client
from tests.conftest import start_sidecar
from tests.fakes.anthropic_api import FakeAnthropic

SECRET_KEY = "sk-test-secret-0123456789"
SECRET_TEXT = "the launch code is PURPLE-ELEPHANT"


def _lines(lines: list[str], n: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [json.loads(line) for line in lines if line.startswith('{"ts":')]
        if len(found) >= n:
            return found
        time.sleep(0.05)
    raise AssertionError("".join(lines))


def test_request_log_lines(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.reset()
    sp = start_sidecar("--upstream", fake_anthropic.base_url, "--request-log", "--log-level", "info")
    try:
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": SECRET_TEXT}],
        }
        r = httpx.post(sp.http_url + "/v1/messages", json=body, headers={"x-api-key": SECRET_KEY})
        assert r.status_code == 200
        with Client(sp.grpc_target, api_key=SECRET_KEY) as c:
            list(c.messages.stream(**body))
        bad = httpx.post(sp.http_url + "/v1/messages", json={"model": "m"}, headers={"x-api-key": SECRET_KEY})
        assert bad.status_code == 400
        lines = _lines(sp.lines, 3)
    finally:
        sp.stop()
        fake_anthropic.reset()
    http, grpc_, invalid = lines[:3]
    assert http["request_id"] == r.headers["sidecar-request-id"]
    assert (http["door"], http["model"], http["upstream"], http["status"], http["outcome"]) == (
        "http",
        "claude-sonnet-4-6",
        "default",
        200,
        "success",
    )
    assert (http["input_tokens"], http["output_tokens"], http["attempts"]) == (12, 7, 1)
    assert http["duration_ms"] >= http["upstream_ms"] >= 0 and http["overhead_ms"] is not None
    assert (grpc_["door"], grpc_["stream"], grpc_["status"], grpc_["output_tokens"]) == (
        "grpc",
        True,
        "OK",
        5,
    )
    assert grpc_["ttft_ms"] is not None
    assert (invalid["status"], invalid["error_type"], invalid["attempts"]) == (
        400,
        "invalid_request_error",
        0,
    )
    everything = "".join(sp.lines)
    assert SECRET_KEY not in everything and "PURPLE-ELEPHANT" not in everything
