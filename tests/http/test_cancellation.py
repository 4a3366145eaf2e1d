"""A client that goes away closes the upstream request: before the first byte, mid-stream, and JSON.

Each test waits (generously) for the fake upstream to see its connection closed; how fast that
happens is measured in the benchmark, not asserted here.
"""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.anthropic_api import FakeAnthropic, Plan, text_stream
from tests.inprocess import ThreadedSidecar

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}


@pytest.mark.parametrize("stream", [False, True])
def test_client_gone_before_first_byte_closes_upstream(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic, stream: bool
) -> None:
    upstream.reset(lambda rec: Plan(hang=True))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            proxy_sidecar.http_url + "/v1/messages",
            json={**BODY, "stream": stream},
            headers={"x-api-key": "k"},
            timeout=httpx.Timeout(10, read=0.5),
        )
    assert upstream.wait_for(lambda: bool(upstream.requests) and upstream.requests[-1].closed_early)


def test_client_gone_mid_stream_closes_upstream(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    upstream.reset(lambda rec: Plan(chunks=text_stream("a long answer " * 20), hang_after=3))
    with httpx.stream(
        "POST",
        proxy_sidecar.http_url + "/v1/messages",
        json={**BODY, "stream": True},
        headers={"x-api-key": "k"},
    ) as r:
        first = next(r.iter_raw())
        assert first.startswith(b"event: message_start")
        # Leaving the block closes the connection with the stream unfinished.
    assert upstream.wait_for(lambda: upstream.requests[-1].closed_early)


def test_sidecar_keeps_serving_after_cancellations(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    upstream.reset(lambda rec: Plan(hang=True))
    for _ in range(3):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                proxy_sidecar.http_url + "/v1/messages",
                json=BODY,
                headers={"x-api-key": "k"},
                timeout=httpx.Timeout(10, read=0.2),
            )
    assert upstream.wait_for(
        lambda: len(upstream.requests) == 3 and all(r.closed_early for r in upstream.requests)
    )
    upstream.reset()
    r = httpx.post(proxy_sidecar.http_url + "/v1/messages", json=BODY, headers={"x-api-key": "k"})
    assert r.status_code == 200
