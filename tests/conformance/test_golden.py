"""Golden traces: the exact Anthropic events for recorded OpenAI streams, through both doors,
and the SDK's stream accumulator agreeing with the non-streaming answer for every case."""

from __future__ import annotations

import copy
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message

from sidecar.client import Client, SidecarAPIError
from sidecar.core.grammar import check_events, check_sse
from sidecar.core.sse import SSESplitter
from tests.conformance import golden
from tests.conformance.conftest import DEFAULT_MODEL, UPSTREAM_KEY
from tests.conftest import Sidecar
from tests.fakes.openai_api import FakeOpenAI, Plan, accumulate
from tests.inprocess import ThreadedSidecar

NAMES = golden.names()
SUCCESS = [n for n in NAMES if golden.success(golden.load(n))]
FAILURE = [n for n in NAMES if n not in SUCCESS]
# Cases a JSON completion can express too (it cannot interleave reasoning and text).
TWINNED = [n for n in SUCCESS if golden.load(n).get("json_equivalent", True)]


def test_the_suite_covers_the_issue() -> None:
    required = {
        "text",
        "tools",
        "parallel_tools",
        "reasoning",
        "refusal",
        "length_stop",
        "stop_sequence",
        "cached_usage",
        "stream_error",
        "abrupt_close",
    }
    assert required <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_translator_gives_the_golden_events(name: str) -> None:
    case = golden.load(name)
    assert golden.translate(case) == case["events"], (
        f"{name}: re-record with python -m tests.conformance.golden"
    )
    assert check_events(case["events"]) == []
    start = case["events"][0]
    if start["type"] == "message_start":
        assert start["message"]["usage"]["input_tokens"] > 0


def _plan(case: dict[str, Any]) -> Plan:
    chunks = copy.deepcopy(case["chunks"])
    return Plan(chunks=chunks, cut_after=len(chunks) if case["end"] == "cut" else None)


def _normalize(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events as the golden files spell them: our message id, no pings, no request ids."""
    out = []
    for event in copy.deepcopy(events):
        if event["type"] == "ping":
            continue
        if event["type"] == "message_start":
            assert event["message"]["id"].startswith("msg_")
            event["message"]["id"] = golden.MESSAGE_ID
        if event["type"] == "error":
            event.pop("request_id", None)
            message = event["error"]["message"]
            event["error"]["message"] = message.replace("upstream 'grok'", "the upstream")
        out.append(event)
    return out


def _http_events(sidecar: Sidecar, request: dict[str, Any]) -> tuple[bytes, list[dict[str, Any]]]:
    r = httpx.post(
        sidecar.http_url + "/v1/messages", json={**request, "stream": True}, headers={"x-api-key": "client"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    return r.content, [e.data for e in SSESplitter().feed(r.content)]


@pytest.mark.parametrize("name", NAMES)
def test_http_stream_is_the_golden_trace(
    name: str, openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    case = golden.load(name)
    openai_upstream.reset(lambda rec: _plan(case))
    body, events = _http_events(openai_sidecar, case["request"])
    assert check_sse(body) == []
    assert _normalize(events) == case["events"]
    sent = openai_upstream.requests[-1]
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.json()["model"] == DEFAULT_MODEL and sent.json()["stream"] is True
    assert sent.json()["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("name", NAMES)
def test_grpc_stream_is_the_golden_trace(
    name: str, openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    case = golden.load(name)
    openai_upstream.reset(lambda rec: _plan(case))
    events: list[dict[str, Any]] = []
    with Client(openai_sidecar.grpc_target, api_key="client") as client:
        try:
            for event in client.messages.stream(**case["request"]):
                events.append(event)
        except SidecarAPIError as exc:
            assert name in FAILURE
            assert exc.type == case["events"][-1]["error"]["type"]
    assert check_events(events) == []
    assert _normalize(events) == case["events"]


def _sdk_request(request: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(request)


@pytest.mark.parametrize("name", TWINNED)
def test_sdk_stream_accumulates_to_the_create_answer_over_http(
    name: str, openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    case = golden.load(name)
    openai_upstream.reset(
        lambda rec: Plan(chunks=copy.deepcopy(case["chunks"]), completion=accumulate(case["chunks"]))
    )
    client = anthropic.Anthropic(base_url=openai_sidecar.http_url, api_key="client", max_retries=0)
    created = client.messages.create(**_sdk_request(case["request"]))
    with client.messages.stream(**_sdk_request(case["request"])) as stream:
        first = next(iter(stream))
        assert first.type == "message_start" and first.message.usage.input_tokens > 0
        final = stream.get_final_message()
    streamed = Message.model_validate(final.to_dict())
    assert streamed.id != created.id
    assert streamed.model_dump(exclude={"id"}) == created.model_dump(exclude={"id"})
    assert streamed.usage == created.usage
    assert created.model == case["request"]["model"]


@pytest.mark.parametrize("name", TWINNED)
def test_sdk_accumulator_matches_create_over_grpc(
    name: str, openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    case = golden.load(name)
    openai_upstream.reset(
        lambda rec: Plan(chunks=copy.deepcopy(case["chunks"]), completion=accumulate(case["chunks"]))
    )
    with Client(openai_sidecar.grpc_target, api_key="client") as client:
        created = client.messages.create(**_sdk_request(case["request"]))
        snapshot: Any = None
        json_bufs: dict[int, bytes] = {}
        for event in client.messages.stream(**_sdk_request(case["request"])):
            snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)  # type: ignore[arg-type]
    streamed = Message.model_validate(snapshot.to_dict())
    expected = Message.model_validate(created)
    assert streamed.model_dump(exclude={"id"}) == expected.model_dump(exclude={"id"})
    # The gRPC answer is the HTTP answer, field for field (ids aside).
    http = httpx.post(
        openai_sidecar.http_url + "/v1/messages", json=case["request"], headers={"x-api-key": "client"}
    ).json()
    assert {k: v for k, v in http.items() if k != "id"} == {k: v for k, v in created.items() if k != "id"}


@pytest.mark.parametrize("name", FAILURE)
def test_sdk_stream_raises_the_mapped_error(
    name: str, openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    case = golden.load(name)
    openai_upstream.reset(lambda rec: _plan(case))
    client = anthropic.Anthropic(base_url=openai_sidecar.http_url, api_key="client", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info, client.messages.stream(**case["request"]) as stream:
        stream.get_final_message()
    assert case["events"][-1]["error"]["type"] in str(info.value)
