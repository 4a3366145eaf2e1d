"""The check mode every test sidecar runs in: it really sees what each door emits."""

from __future__ import annotations

from pathlib import Path

import httpx

from sidecar.client import Client
from tests.conftest import start_sidecar
from tests.fakes.anthropic_api import MESSAGE, FakeAnthropic, Plan, sse

START = {**MESSAGE, "content": [], "stop_reason": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
BROKEN = [
    sse("message_start", {"type": "message_start", "message": START}),
    sse(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    ),
    sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "x"}},
    ),
    sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
    sse(
        "message_delta",
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
    ),
    sse("message_stop", {"type": "message_stop"}),
]
BODY = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def test_violations_of_relayed_streams_are_logged_for_both_doors(
    upstream: FakeAnthropic, tmp_path: Path
) -> None:
    log = tmp_path / "violations.log"
    sp = start_sidecar("--upstream", upstream.base_url, env={"SIDECAR_CHECK_STREAMS": str(log)})
    try:
        # A well-formed stream logs nothing.
        httpx.post(sp.http_url + "/v1/messages", json={**BODY, "stream": True}, headers={"x-api-key": "k"})
        assert not log.exists()
        upstream.reset(lambda rec: Plan(chunks=BROKEN))
        httpx.post(sp.http_url + "/v1/messages", json={**BODY, "stream": True}, headers={"x-api-key": "k"})
        with Client(sp.grpc_target, api_key="k") as c:
            list(c.messages.stream(**BODY))
    finally:
        sp.stop()
    lines = log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["http", "grpc"]
    assert all("thinking block 0 stopped without a signature_delta" in line for line in lines)


def test_a_stream_cut_by_the_upstream_still_ends_properly(upstream: FakeAnthropic, tmp_path: Path) -> None:
    log = tmp_path / "violations.log"
    sp = start_sidecar("--upstream", upstream.base_url, env={"SIDECAR_CHECK_STREAMS": str(log)})
    try:
        upstream.reset(lambda rec: Plan(chunks=BROKEN[:3], reset_after=3))
        r = httpx.post(
            sp.http_url + "/v1/messages", json={**BODY, "stream": True}, headers={"x-api-key": "k"}
        )
        assert b"event: error" in r.content
    finally:
        sp.stop()
    assert not log.exists()  # the sidecar's own error event ends it legally
