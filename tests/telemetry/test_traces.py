"""Traces through the real OTLP/gRPC exporter to a receiver started by the test.

Each request sends its own ``traceparent``, so its spans are found by trace id: a SERVER span
whose parent is the caller's span, a CLIENT span ``chat {model}`` under it, and the upstream
request carrying the CLIENT span as its parent.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from sidecar.client import Client
from tests.conftest import SidecarProcess
from tests.fakes.anthropic_api import FakeAnthropic, Plan, text_stream
from tests.telemetry.conftest import Delta, OtlpReceiver, Span
from tests.telemetry.test_metrics import HEADERS, body, usage_stream

SERVER = trace_pb2.Span.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT
ERROR = trace_pb2.Status.STATUS_CODE_ERROR
SECRET = "the secret prompt text"


def caller() -> tuple[str, str, str]:
    """A fresh caller span: (trace id, span id, traceparent)."""
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def pair(spans: list[Span]) -> tuple[Span, Span]:
    (server,) = [s for s in spans if s.kind == SERVER]
    (client,) = [s for s in spans if s.kind == CLIENT]
    return server, client


def no_content(spans: list[Span]) -> None:
    for span in spans:
        for value in span.attrs.values():
            assert SECRET not in str(value), span


def test_http_stream_spans_continue_the_callers_trace(
    observed: SidecarProcess, upstream: FakeAnthropic, otlp: OtlpReceiver
) -> None:
    model = "claude-trace-stream"
    upstream.reset(lambda rec: Plan(chunks=usage_stream(model)))
    trace_id, parent_id, traceparent = caller()
    data = body(model, SECRET, stream=True, temperature=0.5, top_k=3, stop_sequences=["END"])
    r = httpx.post(
        observed.http_url + "/v1/messages",
        json=data,
        headers={**HEADERS, "traceparent": traceparent, "tracestate": "vendor=x"},
        timeout=30,
    )
    assert r.status_code == 200
    server, client = pair(otlp.trace(trace_id, 2))
    assert server.name == "POST /v1/messages"
    assert server.parent_id == parent_id
    assert server.attrs["http.request.method"] == "POST"
    assert server.attrs["http.response.status_code"] == 200
    assert "error.type" not in server.attrs
    assert client.name == f"chat {model}"
    assert client.parent_id == server.span_id
    assert server.start_ns <= client.start_ns <= client.end_ns <= server.end_ns
    assert client.resource["service.name"] == "messages-sidecar"
    attrs = client.attrs
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.model"] == model
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == upstream.port
    assert attrs["gen_ai.request.max_tokens"] == 64
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.request.top_k"] == 3.0
    assert attrs["gen_ai.request.stop_sequences"] == ("END",)
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.id"] == "msg_01FAKE"
    assert attrs["gen_ai.response.model"] == model
    assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)
    # input = uncached + cache read + cache creation; the cache parts and reasoning as subsets.
    assert attrs["gen_ai.usage.input_tokens"] == 125
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 100
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 20
    assert attrs["gen_ai.usage.output_tokens"] == 30
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 12
    assert 0 < attrs["gen_ai.response.time_to_first_chunk"] < 10
    assert "error.type" not in attrs
    no_content([server, client])
    # The upstream request's parent is our CLIENT span, in the caller's trace, with its state.
    sent = upstream.requests[-1].headers
    assert sent["traceparent"] == f"00-{trace_id}-{client.span_id}-01"
    assert sent["tracestate"] == "vendor=x"


def test_http_json_without_traceparent_starts_a_trace(
    observed: SidecarProcess, upstream: FakeAnthropic, otlp: OtlpReceiver
) -> None:
    model = "claude-trace-root"
    r = httpx.post(observed.http_url + "/v1/messages", json=body(model, SECRET), headers=HEADERS, timeout=30)
    assert r.status_code == 200
    sent = upstream.requests[-1].headers["traceparent"]
    _, trace_id, client_id, flags = sent.split("-")
    server, client = pair(otlp.trace(trace_id, 2))
    assert server.parent_id == ""
    assert client.span_id == client_id and client.parent_id == server.span_id
    assert client.attrs["gen_ai.usage.input_tokens"] == 12
    assert client.attrs["gen_ai.usage.output_tokens"] == 7
    assert "gen_ai.request.stream" not in client.attrs
    assert "gen_ai.response.time_to_first_chunk" not in client.attrs
    no_content([server, client])


@pytest.mark.parametrize("stream", [False, True])
def test_grpc_spans_continue_the_metadata_traceparent(
    observed: SidecarProcess, upstream: FakeAnthropic, otlp: OtlpReceiver, stream: bool
) -> None:
    model = f"claude-trace-grpc-{stream}"
    upstream.reset(lambda rec: Plan(chunks=text_stream(model=model)) if stream else Plan())
    trace_id, parent_id, traceparent = caller()
    with Client(observed.grpc_target, api_key="k", default_headers={"traceparent": traceparent}) as client:
        if stream:
            events = list(client.messages.stream(**body(model, SECRET)))
            assert events[-1]["type"] == "message_stop"
        else:
            client.messages.create(**body(model, SECRET))
    server, span = pair(otlp.trace(trace_id, 2))
    method = "StreamMessage" if stream else "CreateMessage"
    assert server.name == f"sidecar.messages.v1.Messages/{method}"
    assert server.parent_id == parent_id
    assert server.attrs["rpc.system"] == "grpc"
    assert server.attrs["rpc.method"] == method
    assert server.attrs["rpc.grpc.status_code"] == 0
    assert span.name == f"chat {model}" and span.parent_id == server.span_id
    assert span.attrs["gen_ai.usage.input_tokens"] == 12
    assert upstream.requests[-1].headers["traceparent"] == f"00-{trace_id}-{span.span_id}-01"
    no_content([server, span])


def test_errors_set_error_type(observed: SidecarProcess, otlp: OtlpReceiver) -> None:
    trace_id, _, traceparent = caller()
    r = httpx.post(
        observed.http_url + "/v1/messages",
        json=body("mock-trace-error", "[mock error=overloaded_error]"),
        headers={**HEADERS, "traceparent": traceparent},
        timeout=30,
    )
    assert r.status_code == 529
    server, client = pair(otlp.trace(trace_id, 2))
    assert server.attrs["http.response.status_code"] == 529
    assert server.attrs["error.type"] == "overloaded_error" == client.attrs["error.type"]
    assert server.status == ERROR and client.status == ERROR
    assert client.attrs["gen_ai.provider.name"] == "mock"
    assert "server.address" not in client.attrs


def test_client_gone_mid_stream_finishes_the_spans(
    observed: SidecarProcess, upstream: FakeAnthropic, otlp: OtlpReceiver
) -> None:
    model = "claude-trace-gone"
    upstream.reset(lambda rec: Plan(chunks=text_stream("a long answer " * 20, model=model), hang_after=4))
    trace_id, _, traceparent = caller()
    d = Delta(observed.admin_url)
    with httpx.stream(
        "POST",
        observed.http_url + "/v1/messages",
        json=body(model, stream=True),
        headers={**HEADERS, "traceparent": traceparent},
        timeout=30,
    ) as r:
        for line in r.iter_lines():
            if "content_block_delta" in line:
                break
    server, client = pair(otlp.trace(trace_id, 2))
    assert server.attrs["error.type"] == "cancelled" == client.attrs["error.type"]
    assert server.end_ns > 0 and client.end_ns > 0
    # What was delivered is on the span and in the counters.
    attrs: dict[str, Any] = client.attrs
    assert attrs["gen_ai.usage.input_tokens"] == 12 and attrs["gen_ai.usage.output_tokens"] == 1
    assert attrs["gen_ai.response.id"] == "msg_01FAKE"
    assert d.wait("sidecar_tokens_total", 12, model=model, type="input") == 12
    assert upstream.wait_for(lambda: upstream.requests[-1].closed_early)


def test_unsampled_caller_is_propagated_not_recorded(
    observed: SidecarProcess, upstream: FakeAnthropic, otlp: OtlpReceiver
) -> None:
    trace_id, parent_id, _ = caller()
    r = httpx.post(
        observed.http_url + "/v1/messages",
        json=body("claude-trace-unsampled"),
        headers={**HEADERS, "traceparent": f"00-{trace_id}-{parent_id}-00"},
        timeout=30,
    )
    assert r.status_code == 200
    # The caller decided not to sample: the decision travels on, under a span id of ours.
    _, sent_trace, sent_parent, flags = upstream.requests[-1].headers["traceparent"].split("-")
    assert (sent_trace, flags) == (trace_id, "00") and sent_parent != parent_id
    # A later, sampled request's spans arrive; the unsampled one's never do.
    later_trace, _, traceparent = caller()
    httpx.post(
        observed.http_url + "/v1/messages",
        json=body("claude-trace-unsampled"),
        headers={**HEADERS, "traceparent": traceparent},
        timeout=30,
    )
    spans = otlp.wait(lambda ss: any(s.trace_id == later_trace for s in ss))
    assert not [s for s in spans if s.trace_id == trace_id]
