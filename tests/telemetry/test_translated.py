"""Token counts from a translated upstream (OpenAI chat completions) equal the usage the client
sees, for JSON and streamed answers alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import SidecarProcess, start_sidecar
from tests.fakes.openai_api import FakeOpenAI
from tests.inprocess import ThreadedSidecar
from tests.telemetry.conftest import Delta
from tests.telemetry.test_metrics import body, post, sse_events


@pytest.fixture(scope="module")
def openai_sidecar() -> Iterator[SidecarProcess]:
    fake = FakeOpenAI().start()
    sp = start_sidecar("--upstream", fake.base_url, "--provider", "openai", "--no-grpc", expect_grpc=False)
    yield sp
    sp.stop()
    fake.stop()


def final_usage(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The usage an SDK ends with: message_start's, overwritten by message_delta's values."""
    usage = dict(events[0]["message"]["usage"])
    for event in events:
        if event["type"] == "message_delta":
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
    return usage


def test_translated_usage_is_counted(openai_sidecar: ThreadedSidecar) -> None:
    model = "gpt-metrics"
    d = Delta(openai_sidecar.admin_url)
    json_usage = post(openai_sidecar, body(model)).json()["usage"]
    stream_usage = final_usage(sse_events(post(openai_sidecar, body(model, stream=True)).text))
    labels = {"model": model, "provider": "openai", "upstream": "default"}
    assert d.wait("sidecar_requests_total", 2, **labels, outcome="success") == 2
    for kind, key in (
        ("input", "input_tokens"),
        ("output", "output_tokens"),
        ("cache_read", "cache_read_input_tokens"),
    ):
        want = (json_usage.get(key) or 0) + (stream_usage.get(key) or 0)
        assert d("sidecar_tokens_total", **labels, type=kind) == want, kind
    assert d("sidecar_tokens_total", **labels, type="output") > 0
    assert d("sidecar_time_to_first_token_seconds_count", **labels) == 1
