"""Prometheus metrics through both doors, scraped over HTTP from the admin listener.

Counts are exact: each test compares two scrapes around its own requests, on label sets (a model
name) no other test uses. Token counts must equal the usage the upstream reported.

Time-per-token samples are bucketed locally (``LocalHistogram``) and must add up to what one
observation per sample gives.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from sidecar.client import Client, SidecarAPIError
from sidecar.config import build_config
from sidecar.runtime import Runtime
from sidecar.telemetry.metrics import TPOT_BUCKETS, LocalHistogram
from tests.conftest import MOCK_CONFIG, SidecarProcess, start_sidecar
from tests.fakes.anthropic_api import MESSAGE, FakeAnthropic, Plan, sse, text_stream
from tests.telemetry.conftest import Delta, Metrics, scrape

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def body(model: str, text: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}], **extra}


def post(sp: SidecarProcess, data: dict[str, Any]) -> httpx.Response:
    return httpx.post(sp.http_url + "/v1/messages", json=data, headers=HEADERS, timeout=30)


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def usage_stream(model: str) -> list[bytes]:
    """A stream whose usage has every token type: cache fields at the start, thinking at the end."""
    start = dict(
        MESSAGE,
        content=[],
        stop_reason=None,
        model=model,
        usage={
            "input_tokens": 5,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "output_tokens": 1,
        },
    )
    chunks = [sse("message_start", {"type": "message_start", "message": start})]
    chunks.append(
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            },
        )
    )
    deltas: list[dict[str, Any]] = [{"type": "thinking_delta", "thinking": w} for w in ("a", "b", "c")]
    deltas.append({"type": "signature_delta", "signature": "c2ln"})
    for delta in deltas:
        chunks.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    chunks.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    usage = {"output_tokens": 30, "output_tokens_details": {"thinking_tokens": 12}}
    chunks.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": usage,
            },
        )
    )
    chunks.append(sse("message_stop", {"type": "message_stop"}))
    return chunks


def test_admin_endpoints(observed: SidecarProcess) -> None:
    assert httpx.get(observed.admin_url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(observed.admin_url + "/readyz").json() == {"status": "ready"}
    assert httpx.get(observed.admin_url + "/nope").status_code == 404
    assert httpx.post(observed.admin_url + "/metrics").status_code == 405
    metrics = scrape(observed.admin_url)
    text = metrics.text
    assert metrics.sum("sidecar_ready") == 1  # the readiness gauge follows /readyz
    for name in (
        "sidecar_requests_total",
        "sidecar_requests_in_flight",
        "sidecar_request_duration_seconds",
        "sidecar_time_to_first_token_seconds",
        "sidecar_time_per_output_token_seconds",
        "sidecar_upstream_duration_seconds",
        "sidecar_overhead_seconds",
        "sidecar_tokens_total",
        "sidecar_output_tokens_per_second",
        "sidecar_upstream_errors_total",
        "sidecar_upstream_retries_total",
        "sidecar_ready",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    # The API port does not serve metrics.
    assert httpx.get(observed.http_url + "/metrics").status_code == 404


def test_passthrough_json_http(observed: SidecarProcess, upstream: FakeAnthropic) -> None:
    model = "claude-metrics-json"
    d = Delta(observed.admin_url)
    r = post(observed, body(model))
    assert r.status_code == 200
    usage = r.json()["usage"]
    labels = {"door": "http", "model": model, "route": "*", "upstream": "fake", "provider": "anthropic"}
    assert d.wait("sidecar_requests_total", 1, **labels, outcome="success", stream="false") == 1
    assert d("sidecar_tokens_total", **labels, type="input") == usage["input_tokens"] == 12
    assert d("sidecar_tokens_total", **labels, type="output") == usage["output_tokens"] == 7
    for kind in ("cache_read", "cache_creation", "thinking"):
        assert d("sidecar_tokens_total", **labels, type=kind) == 0
    assert d("sidecar_request_duration_seconds_count", **labels, outcome="success") == 1
    assert d("sidecar_upstream_duration_seconds_count", **labels, outcome="success") == 1
    assert d("sidecar_overhead_seconds_count", **labels) == 1
    assert d("sidecar_output_tokens_per_second_count", **labels) == 1
    # Not a stream: no time to first token.
    assert d("sidecar_time_to_first_token_seconds_count", **labels) == 0
    # Overhead is the request's duration minus the upstream's, so smaller than both.
    assert d("sidecar_overhead_seconds_sum", **labels) < d("sidecar_request_duration_seconds_sum", **labels)
    assert d.after.sum("sidecar_requests_in_flight", door="http") == 0
    # The answer was read whole: its connection went back to the pool, idle (kept alive).
    after = scrape(observed.admin_url)
    assert after.sum("sidecar_upstream_connections", upstream="fake", state="busy") == 0
    assert after.sum("sidecar_upstream_connections", upstream="fake", state="idle") >= 1


def test_passthrough_stream_http_every_token_type(observed: SidecarProcess, upstream: FakeAnthropic) -> None:
    model = "claude-metrics-stream"
    upstream.reset(lambda rec: Plan(chunks=usage_stream(model)))
    d = Delta(observed.admin_url)
    r = post(observed, body(model, stream=True))
    assert r.status_code == 200 and sse_events(r.text)[-1]["type"] == "message_stop"
    labels = {"door": "http", "model": model, "stream": "true"}
    assert d.wait("sidecar_requests_total", 1, **labels, outcome="success") == 1
    tokens = {
        t: d("sidecar_tokens_total", **labels, type=t) for t in ("input", "cache_read", "cache_creation")
    }
    assert tokens == {"input": 5, "cache_read": 100, "cache_creation": 20}
    # output is the message_delta's cumulative count, not a sum with message_start's 1.
    assert d("sidecar_tokens_total", **labels, type="output") == 30
    assert d("sidecar_tokens_total", **labels, type="thinking") == 12
    assert d("sidecar_time_to_first_token_seconds_count", **labels) == 1
    # Four content deltas (three thinking, one signature): three gaps after the first.
    assert d("sidecar_time_per_output_token_seconds_count", **labels) == 3
    assert d("sidecar_upstream_duration_seconds_count", **labels, outcome="success") == 1


def test_passthrough_grpc_json_and_stream(observed: SidecarProcess, upstream: FakeAnthropic) -> None:
    model = "claude-metrics-grpc"
    d = Delta(observed.admin_url)
    with Client(observed.grpc_target, api_key="k") as client:
        message = client.messages.create(**body(model))
        events = list(client.messages.stream(**body(model)))
    assert message["usage"]["input_tokens"] == 12 and message["usage"]["output_tokens"] == 7
    start_usage = events[0]["message"]["usage"]
    final_output = next(e for e in events if e["type"] == "message_delta")["usage"]["output_tokens"]
    labels = {"door": "grpc", "model": model, "upstream": "fake"}
    assert d.wait("sidecar_requests_total", 2, **labels, outcome="success") == 2
    assert d("sidecar_requests_total", **labels, stream="false") == 1
    assert d("sidecar_requests_total", **labels, stream="true") == 1
    assert d("sidecar_tokens_total", **labels, type="input") == 12 + start_usage["input_tokens"]
    assert d("sidecar_tokens_total", **labels, type="output") == 7 + final_output
    deltas = sum(e["type"] == "content_block_delta" for e in events)
    assert d("sidecar_time_to_first_token_seconds_count", **labels) == 1
    assert d("sidecar_time_per_output_token_seconds_count", **labels) == deltas - 1
    assert d("sidecar_request_duration_seconds_count", **labels) == 2
    assert d.after.sum("sidecar_requests_in_flight", door="grpc") == 0


def test_mock_tokens_match_its_usage_both_doors(observed: SidecarProcess) -> None:
    model = "mock-metrics"
    d = Delta(observed.admin_url)
    json_usage = post(observed, body(model, "tell me [mock words=9]")).json()["usage"]
    events = sse_events(post(observed, body(model, "more [mock words=13]", stream=True)).text)
    with Client(observed.grpc_target, api_key="k") as client:
        grpc_usage = client.messages.create(**body(model, "via grpc [mock words=5]"))["usage"]
    stream_in = events[0]["message"]["usage"]["input_tokens"]
    stream_out = [e for e in events if e["type"] == "message_delta"][-1]["usage"]["output_tokens"]
    labels = {"model": model, "route": "mock-*", "upstream": "mock", "provider": "mock"}
    assert d.wait("sidecar_requests_total", 3, **labels, outcome="success") == 3
    assert (
        d("sidecar_tokens_total", **labels, door="http", type="input")
        == json_usage["input_tokens"] + stream_in
    )
    assert (
        d("sidecar_tokens_total", **labels, door="http", type="output")
        == 9 + 13
        == (json_usage["output_tokens"] + stream_out)
    )
    assert d("sidecar_tokens_total", **labels, door="grpc", type="input") == grpc_usage["input_tokens"]
    assert d("sidecar_tokens_total", **labels, door="grpc", type="output") == grpc_usage["output_tokens"] == 5


def test_errors_by_outcome_and_type(observed: SidecarProcess) -> None:
    model = "mock-metrics-errors"
    d = Delta(observed.admin_url)
    assert post(observed, body(model, "[mock error=overloaded_error]")).status_code == 529
    # A stream that fails after its 200: the error event is what the client sees.
    r = post(observed, body(model, "[mock stream_error=rate_limit_error after=1]", stream=True))
    assert r.status_code == 200 and sse_events(r.text)[-1]["type"] == "error"
    with Client(observed.grpc_target, api_key="k") as client, pytest.raises(SidecarAPIError) as err:
        client.messages.create(**body(model, "[mock error=overloaded_error]"))
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    # Refused before routing: no route, upstream or model labels.
    assert post(observed, {"max_tokens": 5, "messages": []}).status_code == 400
    labels = {"model": model}
    got = d.wait("sidecar_requests_total", 2, **labels, outcome="server_error", error_type="overloaded_error")
    assert got == 2
    assert d("sidecar_requests_total", **labels, door="http", outcome="server_error") == 1
    assert d("sidecar_requests_total", **labels, door="grpc", outcome="server_error") == 1
    got = d.wait("sidecar_requests_total", 1, **labels, outcome="client_error", error_type="rate_limit_error")
    assert got == 1
    assert d("sidecar_upstream_errors_total", **labels, error_type="overloaded_error") == 2
    assert d("sidecar_upstream_errors_total", **labels, error_type="rate_limit_error") == 1
    assert d("sidecar_upstream_duration_seconds_count", **labels, outcome="server_error") == 2
    # The failed stream still counted what it delivered and its first token.
    assert d("sidecar_time_to_first_token_seconds_count", **labels) == 1
    unrouted = {"route": "", "upstream": "", "model": "", "stream": ""}
    assert d("sidecar_requests_total", **unrouted, door="http", error_type="invalid_request_error") == 1
    assert d("sidecar_requests_total", outcome="success", **labels) == 0


def test_count_tokens_is_its_own_operation(observed: SidecarProcess, upstream: FakeAnthropic) -> None:
    d = Delta(observed.admin_url)
    r = httpx.post(
        observed.http_url + "/v1/messages/count_tokens",
        json={"model": "claude-metrics-count", "messages": [{"role": "user", "content": "hi"}]},
        headers=HEADERS,
    )
    assert r.json() == {"input_tokens": 42}
    labels = {"model": "claude-metrics-count", "operation": "count_tokens"}
    assert d.wait("sidecar_requests_total", 1, **labels, outcome="success") == 1
    # Counting tokens is not spending them.
    assert d("sidecar_tokens_total", model="claude-metrics-count") == 0


def test_client_gone_mid_stream_counts_what_was_delivered(
    observed: SidecarProcess, upstream: FakeAnthropic
) -> None:
    model = "claude-metrics-gone"
    # message_start, content_block_start, ping, one delta; then the upstream hangs.
    upstream.reset(lambda rec: Plan(chunks=text_stream("a long answer " * 20, model=model), hang_after=4))
    d = Delta(observed.admin_url)
    with httpx.stream(
        "POST", observed.http_url + "/v1/messages", json=body(model, stream=True), headers=HEADERS, timeout=30
    ) as r:
        for line in r.iter_lines():
            if "content_block_delta" in line:
                break
    labels = {"door": "http", "model": model}
    assert d.wait("sidecar_requests_total", 1, **labels, outcome="cancelled") == 1
    # message_start's usage is all that arrived: input 12, output 1.
    assert d("sidecar_tokens_total", **labels, type="input") == 12
    assert d("sidecar_tokens_total", **labels, type="output") == 1
    assert d("sidecar_time_to_first_token_seconds_count", **labels) == 1
    assert d("sidecar_upstream_duration_seconds_count", **labels, outcome="cancelled") == 1
    assert d("sidecar_upstream_errors_total", **labels) == 0
    assert d.after.sum("sidecar_requests_in_flight", door="http") == 0


def test_grpc_client_gone_mid_stream(observed: SidecarProcess, upstream: FakeAnthropic) -> None:
    model = "claude-metrics-grpc-gone"
    upstream.reset(lambda rec: Plan(chunks=text_stream("a long answer " * 20, model=model), hang_after=4))
    d = Delta(observed.admin_url)
    with Client(observed.grpc_target, api_key="k") as client:
        stream = client.messages.stream(**body(model))
        for event in stream:
            if event["type"] == "content_block_delta":
                break
        stream.close()  # type: ignore[attr-defined]
    labels = {"door": "grpc", "model": model}
    assert d.wait("sidecar_requests_total", 1, **labels, outcome="cancelled") == 1
    assert d("sidecar_tokens_total", **labels, type="input") == 12
    assert d("sidecar_tokens_total", **labels, type="output") == 1
    assert d.after.sum("sidecar_requests_in_flight", door="grpc") == 0


CAPPED = """
telemetry: {model_label_limit: 3}
upstreams:
  m: {provider: mock, words: 1}
routes:
  - {match: "pinned-model", upstream: m}
  - {match: "*", upstream: m}
"""


def test_unknown_model_names_add_no_series_beyond_other(tmp_path: Path) -> None:
    path = tmp_path / "capped.yaml"
    path.write_text(CAPPED)
    sp = start_sidecar("--config", str(path), "--no-grpc", expect_grpc=False)
    try:
        with httpx.Client(base_url=sp.http_url, headers=HEADERS, timeout=30) as client:
            for i in range(1000):
                r = client.post("/v1/messages", json=body(f"unknown-{i}", "hi"))
                assert r.status_code == 200
            assert client.post("/v1/messages", json=body("pinned-model", "hi")).status_code == 200
        m = scrape(sp.admin_url)
    finally:
        sp.stop()
    models = sorted(s["model"] for s in m.series("sidecar_requests_total"))
    # The first three glob-matched names, then `other`; an exact route's model keeps its own.
    assert models == ["other", "pinned-model", "unknown-0", "unknown-1", "unknown-2"]
    assert m.sum("sidecar_requests_total", model="other") == 997
    assert m.sum("sidecar_requests_total") == 1001
    assert m.sum("sidecar_tokens_total", type="output") == 1001
    for name in (
        "sidecar_request_duration_seconds_count",
        "sidecar_tokens_total",
        "sidecar_overhead_seconds_count",
    ):
        assert {s["model"] for s in m.series(name)} == set(models), name


def test_metrics_off(tmp_path: Path) -> None:
    sp = start_sidecar("--no-metrics", "--no-grpc", expect_grpc=False)
    try:
        assert post(sp, body("m")).status_code == 200
        assert httpx.get(sp.admin_url + "/metrics").status_code == 404
        assert httpx.get(sp.admin_url + "/readyz").status_code == 200
    finally:
        sp.stop()


def test_multiprocess_mode(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, values live in that directory and /metrics reads them."""
    sp = start_sidecar("--no-grpc", env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, expect_grpc=False)
    try:
        d = Delta(sp.admin_url)
        usage = post(sp, body("m", "hi [mock words=4]")).json()["usage"]
        assert d.wait("sidecar_requests_total", 1, model="m", outcome="success") == 1
        assert d("sidecar_tokens_total", model="m", type="output") == usage["output_tokens"] == 4
        assert d.after.sum("sidecar_requests_in_flight") == 0
        assert d.after.sum("sidecar_ready") == 1
    finally:
        sp.stop()
    assert list(tmp_path.glob("*.db"))


def test_a_local_histogram_equals_one_observe_per_sample() -> None:
    samples = [(0.0, 3), (0.0004, 1), (0.003, 2), (0.01, 1), (0.0123, 5), (2.5, 1), (9.0, 2)]
    one, bulk = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("tpot_seconds", "x", buckets=TPOT_BUCKETS, registry=one)
    h2 = Histogram("tpot_seconds", "x", buckets=TPOT_BUCKETS, registry=bulk)
    acc = LocalHistogram()
    for value, n in samples:
        acc.add(value, n)
        for _ in range(n):
            h1.observe(value)
    acc.flush(h2)
    assert generate_latest(one) == generate_latest(bulk)


def test_cells_flush_to_what_direct_updates_would_show() -> None:
    """A cell gathers values locally; after a flush the exposition is byte for byte what one
    inc/observe per event on the label children gives."""
    from sidecar.telemetry.metrics import TOKEN_TYPES, Cell, InFlight, Instruments

    labels = ("http", "chat", "*", "a", "anthropic", "m", "true")
    gathered, direct = Instruments(), Instruments()
    cell = Cell(gathered, labels)
    gauge = InFlight(gathered, gathered.in_flight.labels("http", "chat"))
    events = [("success", "", 0.02), ("server_error", "overloaded_error", 1.5), ("success", "", 0.3)]
    for outcome, etype, seconds in events:
        gauge.inc()
        tpot = LocalHistogram()
        tpot.add(0.004, 3)
        cell.request(outcome, etype, seconds, seconds / 100, seconds / 3, tpot, [3, 0, 1, 7, 0])
        cell.attempt(outcome, etype, seconds / 2)
        direct.in_flight.labels("http", "chat").inc()
        direct.requests.labels(*labels, outcome, etype).inc()
        direct.request_duration.labels(*labels, outcome).observe(seconds)
        direct.upstream_duration.labels(*labels, outcome).observe(seconds / 2)
        if etype:
            direct.upstream_errors.labels(*labels, etype).inc()
        direct.overhead.labels(*labels).observe(seconds / 100)
        direct.ttft.labels(*labels).observe(seconds / 3)
        for _ in range(3):
            direct.tpot.labels(*labels).observe(0.004)
        for kind, n in zip(TOKEN_TYPES, (3, 0, 1, 7, 0), strict=True):
            if n:
                direct.tokens.labels(*labels, kind).inc(n)
        if outcome == "success":  # output tokens per second: successful requests only
            direct.tokens_per_second.labels(*labels).observe(7 / seconds)
    gauge.dec()
    direct.in_flight.labels("http", "chat").dec()

    def own(ins: Instruments) -> list[bytes]:  # process_* and python_* series differ per call
        return [line for line in ins.render()[0].splitlines() if b"sidecar_" in line]

    assert not [line for line in own(gathered) if line.startswith(b"sidecar_requests_total{")]
    gathered.flush()
    assert own(gathered) == own(direct)
    gathered.flush()  # nothing new: the same again
    assert own(gathered) == own(direct)


async def test_ready_gauge_follows_the_runtime() -> None:
    """``sidecar_ready`` is 0 until every listener is up, 1 then, 0 again once stopping."""
    runtime = Runtime(
        build_config(
            {
                **MOCK_CONFIG,
                "listeners": {"http": {"port": 0}, "grpc": {"enabled": False}},
                "admin": {"port": 0},
            }
        )
    )

    def ready() -> float:
        rendered = runtime.telemetry.render_metrics()
        assert rendered is not None
        return Metrics(rendered[0].decode()).sum("sidecar_ready")

    assert ready() == 0
    await runtime.start()
    try:
        assert ready() == 1
    finally:
        await runtime.stop(0)
    assert ready() == 0


async def test_event_loop_tasks_gauge_counts_the_loops_tasks() -> None:
    runtime = Runtime(build_config({**MOCK_CONFIG, "admin": {"enabled": False}}))

    def tasks() -> float:
        runtime.telemetry.flush_metrics()  # as /metrics does, on the loop's thread
        rendered = runtime.telemetry.render_metrics()
        assert rendered is not None
        return Metrics(rendered[0].decode()).sum("sidecar_event_loop_tasks")

    before = tasks()
    assert before == len(asyncio.all_tasks()) >= 1  # this test's own task at least
    extra = [asyncio.ensure_future(asyncio.sleep(10)) for _ in range(3)]
    try:
        assert tasks() == before + 3
    finally:
        for task in extra:
            task.cancel()
    await runtime.telemetry.aclose()


def test_traced_memory_gauge_only_when_opted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    # SIDECAR_TRACEMALLOC=1 (the soak campaign sets it) starts tracemalloc at start-up and adds
    # sidecar_traced_memory_bytes; without it, no such series.
    import tracemalloc

    from sidecar.telemetry.metrics import Instruments

    assert b"sidecar_traced_memory_bytes" not in Instruments().render()[0]
    monkeypatch.setenv("SIDECAR_TRACEMALLOC", "1")
    tracemalloc.start()
    try:
        text = Instruments().render()[0].decode()
    finally:
        tracemalloc.stop()
    value = next(ln for ln in text.splitlines() if ln.startswith("sidecar_traced_memory_bytes "))
    assert float(value.split()[1]) > 0
