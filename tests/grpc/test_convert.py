"""dict <-> proto converters: JSON -> proto -> wire -> proto -> JSON is the identity."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from google.protobuf.message import Message as ProtoMessage
from hypothesis import HealthCheck, given, settings

from sidecar.errors import InvalidRequest
from sidecar.grpc import convert
from sidecar.grpc.codec import plan_for
from sidecar.messages.v1 import messages_pb2 as pb
from tests.grpc import strategies as S

ToProto = Callable[[dict[str, Any]], ProtoMessage]
FromProto = Callable[[Any], dict[str, Any]]


def encoded(value: Any) -> bytes:
    """Canonical JSON bytes: key order ignored, JSON types kept (1 vs 1.0, true vs 1)."""
    return msgspec.json.encode(value, order="sorted")


def roundtrip(to: ToProto, frm: FromProto, value: dict[str, Any]) -> ProtoMessage:
    """Assert value -> proto -> bytes -> proto -> value; return the proto."""
    original = copy.deepcopy(value)
    m = to(value)
    assert value == original, "to_proto must not modify its input"
    wire = m.SerializeToString()
    back = frm(type(m).FromString(wire))
    assert back == value
    assert encoded(back) == encoded(value)
    return m


def leftovers(m: ProtoMessage, path: str = "") -> Iterator[str]:
    """Paths of every extra_json / unknown_json set anywhere in ``m``."""
    for fd, v in m.ListFields():
        here = f"{path}.{fd.name}" if path else fd.name
        if fd.name in ("extra_json", "unknown_json"):
            yield f"{here}={v}"
        elif fd.type == fd.TYPE_MESSAGE:
            if fd.is_repeated:
                for i, item in enumerate(v):
                    yield from leftovers(item, f"{here}.{i}")
            else:
                yield from leftovers(v, here)


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "max_tokens": 1024, **fields}


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assert_request_typed(body: dict[str, Any]) -> pb.CreateMessageRequest:
    m = roundtrip(convert.request_to_proto, convert.request_from_proto, body)
    assert list(leftovers(m)) == []
    assert isinstance(m, pb.CreateMessageRequest)
    return m


def assert_message_typed(msg: dict[str, Any]) -> pb.Message:
    m = roundtrip(convert.message_to_proto, convert.message_from_proto, msg)
    assert list(leftovers(m)) == []
    assert isinstance(m, pb.Message)
    return m


# --- spec section 4: both streaming examples --------------------------------------------------------

TEXT_STREAM = """
event: message_start
data: {"type":"message_start","message":{"id":"msg_01A","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type":"ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":6}}

event: message_stop
data: {"type":"message_stop"}
"""

TOOL_STREAM = r"""
event: message_start
data: {"type":"message_start","message":{"id":"msg_01B","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":340,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01X","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"is\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":41}}

event: message_stop
data: {"type":"message_stop"}
"""


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in text.strip().split("\n\n"):
        name_line, data_line = chunk.split("\n")
        events.append(
            (name_line.removeprefix("event: "), msgspec.json.decode(data_line.removeprefix("data: ")))
        )
    return events


# The only members the proto cannot type in the spec's examples: JSON nulls and the empty content.
EXPECTED_LEFTOVERS = {
    "message_start": [
        'message_start.message.extra_json={"content":[],"stop_reason":null,"stop_sequence":null}'
    ],
    "message_delta": ['message_delta.delta.extra_json={"stop_sequence":null}'],
}


@pytest.mark.parametrize("stream", [TEXT_STREAM, TOOL_STREAM], ids=["text", "tool_use"])
def test_spec_stream_examples_round_trip(stream: str) -> None:
    events = sse_events(stream)
    assert len(events) >= 8
    for name, data in events:
        m = roundtrip(convert.event_to_proto, convert.event_from_proto, data)
        assert isinstance(m, pb.StreamEvent)
        assert m.WhichOneof("event") == name  # the SSE event name is the oneof case
        assert list(leftovers(m)) == EXPECTED_LEFTOVERS.get(name, [])


def test_stream_event_fields_are_typed() -> None:
    events = dict((e["type"] + str(e.get("index", "")), e) for _, e in sse_events(TOOL_STREAM))
    start = convert.event_to_proto(events["message_start"])
    assert start.message_start.message.usage.input_tokens == 340
    assert start.message_start.message.HasField("stop_reason") is False
    block = convert.event_to_proto(events["content_block_start1"]).content_block_start
    assert block.index == 1
    assert block.content_block.tool_use.input == "{}"
    delta = convert.event_to_proto(
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}
    )
    assert delta.content_block_delta.delta.input_json_delta.HasField("partial_json")
    stop = convert.event_to_proto({"type": "message_stop"})
    assert stop.WhichOneof("event") == "message_stop"


def test_error_events_and_envelopes() -> None:
    mid_stream = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    m = roundtrip(convert.event_to_proto, convert.event_from_proto, mid_stream)
    assert m.WhichOneof("event") == "error" and m.error.error.type == "overloaded_error"
    envelope = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "slow down",
            "details": {"error_code": "ramp_limit_exceeded", "n": 2},
        },
        "request_id": "req_011",
    }
    m = roundtrip(convert.event_to_proto, convert.event_from_proto, envelope)
    assert m.error.request_id == "req_011"
    assert m.error.error.details.error_code == "ramp_limit_exceeded"


# --- requests --------------------------------------------------------------------------------------

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "default": 1}},
        "required": ["city"],
    },
}


def test_tool_use_conversation() -> None:
    body = request(
        system="You are terse.",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01X",
                        "name": "get_weather",
                        "input": {"city": "Paris", "days": 2},
                    },
                ],
            },
            user(
                {"type": "tool_result", "tool_use_id": "toolu_01X", "content": "18C, sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01Y",
                    "content": [{"type": "text", "text": "x"}],
                    "is_error": True,
                },
                {"type": "text", "text": "Thanks"},
            ),
            {"role": "assistant", "content": "It is"},  # prefill
        ],
    )
    m = assert_request_typed(body)
    assert m.system_text == "You are terse."
    assert m.messages[0].content_text == "Weather in Paris?"
    use = m.messages[1].content_blocks.items[1].tool_use
    assert (use.id, use.name, msgspec.json.decode(use.input)) == (
        "toolu_01X",
        "get_weather",
        {"city": "Paris", "days": 2},
    )
    results = m.messages[2].content_blocks.items
    assert results[0].tool_result.content_text == "18C, sunny"
    assert results[1].tool_result.is_error is True
    assert m.tools[0].custom.name == "get_weather"


def test_images_of_each_source() -> None:
    body = request(
        messages=[
            user(
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                {
                    "type": "image",
                    "source": {"type": "file", "file_id": "file_011"},
                    "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    "transformations": {"oversized_image": "error"},
                },
            )
        ]
    )
    m = assert_request_typed(body)
    kinds = [b.image.source.WhichOneof("source") for b in m.messages[0].content_blocks.items]
    assert kinds == ["base64", "url", "file"]


def test_documents_of_each_source_and_search_results() -> None:
    body = request(
        messages=[
            user(
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
                    "title": "Report",
                    "context": "Q3",
                    "citations": {"enabled": True},
                    "cache_control": {"type": "ephemeral"},
                },
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "plain words"},
                },
                {"type": "document", "source": {"type": "content", "content": "a custom document"}},
                {
                    "type": "document",
                    "source": {
                        "type": "content",
                        "content": [
                            {"type": "text", "text": "chunk 1"},
                            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                        ],
                    },
                    "citations": {"enabled": False},
                },
                {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                {"type": "document", "source": {"type": "file", "file_id": "file_012"}},
                {
                    "type": "search_result",
                    "source": "https://kb/1",
                    "title": "KB 1",
                    "content": [{"type": "text", "text": "answer"}],
                    "citations": {"enabled": True},
                    "cache_control": {"type": "ephemeral"},
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [
                        {
                            "type": "search_result",
                            "source": "s",
                            "title": "t",
                            "content": [{"type": "text", "text": "c"}],
                        },
                        {"type": "tool_reference", "tool_name": "deferred_tool"},
                    ],
                },
            )
        ]
    )
    m = assert_request_typed(body)
    kinds = [b.document.source.WhichOneof("source") for b in m.messages[0].content_blocks.items[:6]]
    assert kinds == ["base64", "text", "content", "content", "url", "file"]


def test_thinking_blocks_echoed_back() -> None:
    body = request(
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Let me think", "signature": "EqQBCgIYAhIM"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"},
                    {"type": "text", "text": "Hello"},
                ],
            },
        ],
    )
    m = assert_request_typed(body)
    assert [b.WhichOneof("block") for b in m.messages[1].content_blocks.items] == [
        "thinking",
        "redacted_thinking",
        "text",
    ]


def test_request_with_every_top_level_field() -> None:
    body = request(
        max_tokens=0,  # presence: 0 survives
        messages=[{"role": "user", "content": ""}],  # "" survives
        system=[
            {"type": "text", "text": "rules", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "text", "text": "more"},
        ],
        stop_sequences=["\n\nHuman:", "END"],
        stream=False,  # presence: false survives
        metadata={"user_id": "3f6c"},
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        thinking={"type": "adaptive", "display": "omitted"},
        output_config={
            "effort": "xhigh",
            "format": {"type": "json_schema", "schema": {"type": "object", "properties": {}}},
        },
        cache_control={"type": "ephemeral", "ttl": "5m"},
        service_tier="standard_only",
        container={
            "id": "cntr_1",
            "skills": [{"skill_id": "pptx", "type": "anthropic", "version": "latest"}],
        },
        inference_geo="us",
        speed="fast",
        diagnostics={"previous_message_id": "msg_01"},
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        # beta body fields
        context_management={
            "edits": [{"type": "clear_tool_uses_20250919", "keep": {"type": "tool_uses", "value": 3}}]
        },
        mcp_servers=[
            {
                "type": "url",
                "url": "https://mcp.example.com/sse",
                "name": "example",
                "authorization_token": "tok",
                "tool_configuration": {"enabled": True, "allowed_tools": ["a"]},
            }
        ],
        compaction={"enabled": True},
        fallbacks=[{"model": "claude-haiku-4-5"}],
        fallback_credit_token="fct_1",
        billing_policy={"type": "standard"},
        thread={"id": "thr_1"},
    )
    m = assert_request_typed(body)
    assert m.HasField("max_tokens") and m.max_tokens == 0
    assert m.HasField("stream") and m.stream is False
    assert m.messages[0].WhichOneof("content") == "content_text"
    assert m.container_params.skills[0].skill_id == "pptx"
    assert m.temperature == 0.5 and m.top_k == 40
    assert msgspec.json.decode(m.fallbacks) == [{"model": "claude-haiku-4-5"}]

    # An unknown top-level field and a container id string.
    body2 = request(messages=[], container="cntr_2", brand_new_field={"x": [1, 2.5, None]}, temperature=None)
    m2 = roundtrip(convert.request_to_proto, convert.request_from_proto, body2)
    assert m2.container_id == "cntr_2"
    assert msgspec.json.decode(m2.extra_json) == {
        "messages": [],
        "brand_new_field": {"x": [1, 2.5, None]},
        "temperature": None,
    }


VERSIONED_TOOLS = [
    {"type": "bash_20250124", "name": "bash"},
    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool", "max_characters": 10000},
    {
        "type": "text_editor_20250124",
        "name": "str_replace_based_edit_tool",
        "cache_control": {"type": "ephemeral"},
    },
    {"type": "memory_20250818", "name": "memory"},
    {
        "type": "computer_toolset_20260801",
        "name": "computer",
        "configs": {"screenshot": {"display_width_px": 1024}},
    },
    {"type": "browser_toolset_20260801", "name": "browser", "configs": {}},
    {
        "type": "web_search_20250305",
        "name": "web_search",
        "max_uses": 5,
        "allowed_domains": ["example.com"],
        "user_location": {
            "type": "approximate",
            "city": "Paris",
            "region": "IDF",
            "country": "FR",
            "timezone": "Europe/Paris",
        },
    },
    {
        "type": "web_search_20260209",
        "name": "web_search",
        "blocked_domains": ["bad.example"],
        "response_inclusion": "full",
    },
    {
        "type": "web_fetch_20250910",
        "name": "web_fetch",
        "max_uses": 2,
        "citations": {"enabled": True},
        "max_content_tokens": 5000,
        "use_cache": False,
        "url_sources": ["user_message"],
    },
    {
        "type": "code_execution_20250825",
        "name": "code_execution",
        "defer_loading": True,
        "allowed_callers": ["direct"],
    },
    {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"},
    {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex", "strict": True},
]


def test_both_tool_kinds() -> None:
    custom = [
        WEATHER_TOOL,
        {
            "type": "custom",
            "name": "calc",
            "description": "",
            "input_schema": {"type": "object", "properties": {"expr": {"type": "string"}}},
            "cache_control": {"type": "ephemeral"},
            "strict": True,
            "input_examples": [{"expr": "1+1"}, {"expr": "2*3"}],
            "defer_loading": False,
            "eager_input_streaming": True,
            "allowed_callers": ["direct", "code_execution_20260120"],
        },
    ]
    m = assert_request_typed(
        request(messages=[{"role": "user", "content": "x"}], tools=custom + VERSIONED_TOOLS)
    )
    cases = [t.WhichOneof("tool") for t in m.tools]
    assert cases == [
        "custom",
        "custom",
        "bash",
        "text_editor",
        "text_editor",
        "memory",
        "computer_toolset",
        "browser_toolset",
        "web_search",
        "web_search",
        "web_fetch",
        "code_execution",
        "tool_search_tool_bm25",
        "tool_search_tool_regex",
    ]
    # Custom tools: `type` absent and `type: "custom"` stay distinct.
    assert not m.tools[0].custom.HasField("type")
    assert m.tools[1].custom.type == "custom"
    assert list(m.tools[1].custom.input_examples) == ['{"expr":"1+1"}', '{"expr":"2*3"}']
    assert m.tools[8].web_search.type == "web_search_20250305"
    # eager_input_streaming: null is allowed by the API: it rides in extra_json.
    tool = dict(WEATHER_TOOL, eager_input_streaming=None)
    roundtrip(convert.request_to_proto, convert.request_from_proto, request(messages=[], tools=[tool]))


@pytest.mark.parametrize(
    "choice",
    [
        {"type": "auto"},
        {"type": "auto", "disable_parallel_tool_use": True},
        {"type": "any", "disable_parallel_tool_use": False},
        {"type": "tool", "name": "get_weather"},
        {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        {"type": "none"},
    ],
)
def test_tool_choice_variants(choice: dict[str, Any]) -> None:
    m = assert_request_typed(
        request(messages=[{"role": "user", "content": "x"}], tools=[WEATHER_TOOL], tool_choice=choice)
    )
    assert m.tool_choice.WhichOneof("choice") == choice["type"]


@pytest.mark.parametrize(
    "thinking",
    [
        {"type": "enabled", "budget_tokens": 1024},
        {"type": "enabled", "budget_tokens": 4096, "display": "summarized"},
        {"type": "adaptive"},
        {"type": "adaptive", "display": "omitted"},
        {"type": "disabled"},
        {"type": "between_tools"},
    ],
)
def test_thinking_variants(thinking: dict[str, Any]) -> None:
    m = assert_request_typed(request(messages=[{"role": "user", "content": "x"}], thinking=thinking))
    assert m.thinking.WhichOneof("config") == thinking["type"]


def test_large_request() -> None:
    body = S.large_request()
    assert len(msgspec.json.encode(body)) > 80_000
    m = assert_request_typed(body)
    assert len(m.tools) == 12
    # JSON text keeps the key order of tool schemas (a different order would miss the prompt cache).
    assert m.tools[0].custom.input_schema == msgspec.json.encode(body["tools"][0]["input_schema"]).decode()


# --- responses --------------------------------------------------------------------------------------

FULL_USAGE = {
    "input_tokens": 2095,
    "output_tokens": 503,
    "cache_creation_input_tokens": 2051,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 2051, "ephemeral_1h_input_tokens": 0},
    "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
    "service_tier": "standard",
    "output_tokens_details": {"thinking_tokens": 120},
    "inference_geo": "us",
    "speed": "standard",
}

CITATIONS = [
    {
        "type": "char_location",
        "cited_text": "The grass is green.",
        "document_index": 0,
        "document_title": "Example",
        "start_char_index": 0,
        "end_char_index": 20,
        "file_id": "file_1",
    },
    {
        "type": "page_location",
        "cited_text": "p",
        "document_index": 1,
        "document_title": "PDF",
        "start_page_number": 1,
        "end_page_number": 2,
    },
    {
        "type": "content_block_location",
        "cited_text": "c",
        "document_index": 2,
        "document_title": "Custom",
        "start_block_index": 0,
        "end_block_index": 1,
    },
    {
        "type": "web_search_result_location",
        "cited_text": "w",
        "url": "https://a",
        "title": "A",
        "encrypted_index": "Eo8B",
    },
    {
        "type": "search_result_location",
        "cited_text": "s",
        "source": "https://kb/1",
        "title": "KB",
        "search_result_index": 0,
        "start_block_index": 0,
        "end_block_index": 1,
    },
]

SERVER_TOOL_BLOCKS = [
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "weather"}},
    {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": [
            {
                "type": "web_search_result",
                "url": "https://a",
                "title": "A",
                "encrypted_content": "Eq",
                "page_age": "1 day",
            },
            {"type": "web_search_result", "url": "https://b", "title": "B", "encrypted_content": "Er"},
        ],
    },
    {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_2",
        "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"},
    },
    {
        "type": "server_tool_use",
        "id": "srvtoolu_3",
        "name": "web_fetch",
        "input": {"url": "https://a"},
        "caller": {"type": "code_execution_20250825", "tool_id": "srvtoolu_9"},
    },
    {
        "type": "web_fetch_tool_result",
        "tool_use_id": "srvtoolu_3",
        "caller": {"type": "direct"},
        "content": {
            "type": "web_fetch_result",
            "url": "https://a",
            "retrieved_at": "2026-01-01T00:00:00Z",
            "content": {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "page"},
                "title": "A",
                "citations": {"enabled": True},
            },
        },
    },
    {
        "type": "code_execution_tool_result",
        "tool_use_id": "srvtoolu_4",
        "content": {
            "type": "code_execution_result",
            "stdout": "4\n",
            "stderr": "",
            "return_code": 0,
            "content": [{"type": "code_execution_output", "file_id": "file_out"}],
        },
    },
    {
        "type": "code_execution_tool_result",
        "tool_use_id": "srvtoolu_5",
        "content": {
            "type": "encrypted_code_execution_result",
            "encrypted_stdout": "Eo",
            "stderr": "",
            "return_code": 1,
            "content": [{"type": "code_execution_output", "file_id": "f2"}],
        },
    },
    {
        "type": "bash_code_execution_tool_result",
        "tool_use_id": "srvtoolu_6",
        "content": {
            "type": "bash_code_execution_result",
            "stdout": "ok",
            "stderr": "",
            "return_code": 0,
            "content": [{"type": "bash_code_execution_output", "file_id": "f"}],
        },
    },
    {
        "type": "bash_code_execution_tool_result",
        "tool_use_id": "srvtoolu_7",
        "content": {"type": "bash_code_execution_tool_result_error", "error_code": "unavailable"},
    },
    {
        "type": "text_editor_code_execution_tool_result",
        "tool_use_id": "srvtoolu_8",
        "content": {
            "type": "text_editor_code_execution_view_result",
            "file_type": "text",
            "content": "x = 1",
            "num_lines": 1,
            "start_line": 1,
            "total_lines": 1,
        },
    },
    {
        "type": "text_editor_code_execution_tool_result",
        "tool_use_id": "srvtoolu_9",
        "content": {"type": "text_editor_code_execution_create_result", "is_file_update": False},
    },
    {
        "type": "text_editor_code_execution_tool_result",
        "tool_use_id": "srvtoolu_10",
        "content": {
            "type": "text_editor_code_execution_str_replace_result",
            "lines": ["- a", "+ b"],
            "new_lines": 1,
            "new_start": 3,
            "old_lines": 1,
            "old_start": 3,
        },
    },
    {
        "type": "tool_search_tool_result",
        "tool_use_id": "srvtoolu_11",
        "content": {
            "type": "tool_search_tool_search_result",
            "tool_references": [{"type": "tool_reference", "tool_name": "get_weather"}],
        },
    },
    {
        "type": "tool_search_tool_result",
        "tool_use_id": "srvtoolu_12",
        "content": {"type": "tool_search_tool_result_error", "error_code": "too_many_requests"},
    },
    {"type": "container_upload", "file_id": "file_up"},
]


def response(content: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": "claude-sonnet-4-6",
        "stop_reason": "end_turn",
        "stop_sequence": "END",
        "usage": FULL_USAGE,
        **fields,
    }


def test_message_with_full_usage_and_every_field() -> None:
    msg = response(
        [{"type": "text", "text": "Hi!"}],
        stop_details={"type": "refusal", "category": "cyber", "explanation": "no"},
        container={
            "id": "cntr_1",
            "expires_at": "2026-01-01T00:00:00Z",
            "skills": [{"skill_id": "pptx", "type": "anthropic", "version": "1"}],
        },
        diagnostics={"cache_miss_reason": {"type": "tools_changed", "cache_missed_input_tokens": 1200}},
    )
    m = assert_message_typed(msg)
    assert m.usage.cache_creation.ephemeral_5m_input_tokens == 2051
    assert m.usage.output_tokens_details.thinking_tokens == 120
    assert m.diagnostics.cache_miss_reason.type == "tools_changed"


def test_citations_of_each_kind() -> None:
    m = assert_message_typed(
        response([{"type": "text", "text": "the grass is green", "citations": CITATIONS}])
    )
    kinds = [c.WhichOneof("citation") for c in m.content[0].text.citations]
    assert kinds == [c["type"] for c in CITATIONS]
    for c in CITATIONS:
        event = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "citations_delta", "citation": c},
        }
        e = roundtrip(convert.event_to_proto, convert.event_from_proto, event)
        assert list(leftovers(e)) == []
    # `citations: null` in a response text block.
    roundtrip(
        convert.message_to_proto,
        convert.message_from_proto,
        response([{"type": "text", "text": "x", "citations": None}]),
    )


def test_server_tool_blocks() -> None:
    m = assert_message_typed(response(SERVER_TOOL_BLOCKS, stop_reason="pause_turn"))
    assert [b.WhichOneof("block") for b in m.content] == [b["type"] for b in SERVER_TOOL_BLOCKS]
    assert m.content[1].web_search_tool_result.content_list.items[1].web_search_result.url == "https://b"
    error = m.content[2].web_search_tool_result.content_object.web_search_tool_result_error
    assert error.error_code == "max_uses_exceeded"
    fetched = m.content[4].web_fetch_tool_result.content_object.web_fetch_result.content.document
    assert fetched.source.text.data == "page"
    # Result blocks arrive complete in content_block_start.
    for i, block in enumerate(SERVER_TOOL_BLOCKS):
        e = roundtrip(
            convert.event_to_proto,
            convert.event_from_proto,
            {"type": "content_block_start", "index": i, "content_block": block},
        )
        assert list(leftovers(e)) == []
    # And they are echoed back in assistant turns.
    assert_request_typed(request(messages=[{"role": "assistant", "content": SERVER_TOOL_BLOCKS}]))


def test_beta_output_blocks() -> None:
    blocks = [
        {
            "type": "mcp_tool_use",
            "id": "mcptoolu_1",
            "name": "echo",
            "server_name": "example",
            "input": {"a": 1},
        },
        {
            "type": "mcp_tool_result",
            "tool_use_id": "mcptoolu_1",
            "is_error": False,
            "content": [{"type": "text", "text": "a"}],
        },
        {"type": "compaction", "content": "summary", "encrypted_content": "Ep", "signature": "sig"},
        {"type": "fallback", "from": "claude-opus-4-8", "to": "claude-sonnet-4-6", "trigger": "overloaded"},
    ]
    m = assert_message_typed(response(blocks))
    assert getattr(m.content[3].fallback, "from") == "claude-opus-4-8"
    listing = {"type": "mcp_tool_listing", "server_name": "example", "tools": [{"name": "echo"}]}
    m = roundtrip(convert.message_to_proto, convert.message_from_proto, response([listing]))
    assert m.content[0].WhichOneof("block") == "mcp_tool_listing"
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "compaction_delta", "content": "s", "encrypted_content": "E"},
    }
    assert list(leftovers(roundtrip(convert.event_to_proto, convert.event_from_proto, delta))) == []


def test_stream_events_with_every_field() -> None:
    events = [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQB"},
        },
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
        },
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": "refusal",
                "stop_sequence": "x",
                "stop_details": {"type": "refusal", "category": "bio"},
                "container": {"id": "c", "expires_at": "t"},
            },
            "usage": FULL_USAGE,
        },
    ]
    for event in events:
        assert list(leftovers(roundtrip(convert.event_to_proto, convert.event_from_proto, event))) == []


# --- count_tokens and models --------------------------------------------------------------------


def test_count_tokens() -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "messages": [{"role": "user", "content": "Hello"}],
        "system": "s",
        "tools": [WEATHER_TOOL, {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "any"},
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "cache_control": {"type": "ephemeral"},
        "output_config": {"effort": "low"},
        "speed": "fast",
    }
    m = roundtrip(convert.count_tokens_request_to_proto, convert.count_tokens_request_from_proto, body)
    assert isinstance(m, pb.CountTokensRequest) and list(leftovers(m)) == []
    r = roundtrip(
        convert.count_tokens_response_to_proto, convert.count_tokens_response_from_proto, {"input_tokens": 14}
    )
    assert isinstance(r, pb.CountTokensResponse) and r.input_tokens == 14
    roundtrip(
        convert.count_tokens_response_to_proto,
        convert.count_tokens_response_from_proto,
        {"input_tokens": 0, "context_management": {"original_input_tokens": 9}},
    )


MODEL = {
    "type": "model",
    "id": "claude-sonnet-4-6",
    "display_name": "Claude Sonnet 4.6",
    "created_at": "2026-02-17T00:00:00Z",
    "max_input_tokens": 1000000,
    "max_tokens": 64000,
    "lifecycle": "active",
    "deprecated_at": None,
    "retires_at": None,
    "line": "sonnet",
    "capabilities": {
        "batch": {"supported": True},
        "citations": {"supported": True},
        "code_execution": {"supported": True},
        "context_management": {"supported": False},
        "effort": {
            "supported": True,
            "low": {"supported": True},
            "medium": {"supported": True},
            "high": {"supported": True},
            "xhigh": {"supported": False},
            "max": {"supported": True},
        },
        "image_input": {"supported": True},
        "pdf_input": {"supported": True},
        "server_tools": {"supported": True},
        "structured_outputs": {"supported": True},
        "thinking": {
            "supported": True,
            "types": {
                "enabled": {"supported": True},
                "adaptive": {"supported": True},
                "disabled": {"supported": True},
                "between_tools": {"supported": False},
            },
        },
    },
}


def test_models() -> None:
    m = roundtrip(convert.model_info_to_proto, convert.model_info_from_proto, MODEL)
    assert isinstance(m, pb.ModelInfo)
    assert list(leftovers(m)) == ['extra_json={"deprecated_at":null,"retires_at":null}']
    assert m.capabilities.thinking.types.adaptive.supported is True
    old = {
        "type": "model",
        "id": "claude-3-haiku",
        "display_name": "Claude 3 Haiku",
        "created_at": "2024-03-07T00:00:00Z",
    }
    page = {
        "data": [MODEL, old],
        "has_more": True,
        "first_id": "claude-sonnet-4-6",
        "last_id": "claude-3-haiku",
    }
    p = roundtrip(convert.list_models_response_to_proto, convert.list_models_response_from_proto, page)
    assert isinstance(p, pb.ListModelsResponse) and p.has_more is True and len(p.data) == 2
    empty = {"data": [], "has_more": False, "first_id": None, "last_id": None}
    roundtrip(convert.list_models_response_to_proto, convert.list_models_response_from_proto, empty)
    params = {"limit": 20, "after_id": "m1", "lifecycle": ["active", "deprecated"]}
    q = roundtrip(convert.list_models_request_to_proto, convert.list_models_request_from_proto, params)
    assert isinstance(q, pb.ListModelsRequest) and list(q.lifecycle) == ["active", "deprecated"]


# --- unknown types and members, JSON number types ----------------------------------------------------


def test_unknown_types_survive_whole() -> None:
    block = {"type": "hologram", "frames": [1, 2.0], "cache_control": {"type": "ephemeral"}}
    body = request(
        messages=[user({"type": "text", "text": "x"}, block)],
        tools=[{"type": "teleport_20300101", "name": "tp"}, {"type": 7, "name": "bad"}, {"type": None}],
        tool_choice={"type": "some_new_choice", "tools": ["a"]},
        thinking={"type": "deep", "budget": 1},
        system=[{"type": "text", "text": "s"}, {"type": "audio", "data": "..."}],
    )
    m = roundtrip(convert.request_to_proto, convert.request_from_proto, body)
    assert msgspec.json.decode(m.messages[0].content_blocks.items[1].unknown_json) == block
    assert [t.WhichOneof("tool") for t in m.tools] == ["unknown_json"] * 3
    assert m.tool_choice.WhichOneof("choice") == "unknown_json"
    assert m.thinking.WhichOneof("config") == "unknown_json"
    # A versioned family keeps only dated types: `web_search_tool_result` is not a web_search tool.
    m = roundtrip(
        convert.request_to_proto,
        convert.request_from_proto,
        request(tools=[{"type": "web_search_latest", "name": "w"}]),
    )
    assert m.tools[0].WhichOneof("tool") == "unknown_json"

    for event in [
        {"type": "brand_new_event", "payload": {"a": 1}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "audio_delta", "pcm": "AAA="}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "hologram", "frames": []}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "citations_delta", "citation": {"type": "video_location", "t": 1.5}},
        },
    ]:
        e = roundtrip(convert.event_to_proto, convert.event_from_proto, event)
        assert any("unknown_json" in leftover for leftover in leftovers(e))
    src = {"type": "image", "source": {"type": "s3", "bucket": "b"}}
    m = roundtrip(convert.request_to_proto, convert.request_from_proto, request(messages=[user(src)]))
    assert m.messages[0].content_blocks.items[0].image.source.WhichOneof("source") == "unknown_json"


def test_unknown_and_mistyped_members_survive() -> None:
    body = request(
        max_tokens="1024",  # wrong JSON type: kept verbatim
        stop_sequences=[],  # empty list: kept (proto cannot tell [] from absent)
        tools=[dict(WEATHER_TOOL, new_member={"a": None}, strict=None)],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": None, "future": True}], "name": "bob"},
            {"role": "assistant", "content": None},
            {"role": "user", "content": [{"type": "text", "text": "ok"}, "bare string item"]},
            {
                "role": 3,
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": {"unexpected": "object"}}],
            },
        ],
        top_k=True,  # a bool is not an int64
        temperature=2**64,  # out of int64 range and not a double
        metadata={"user_id": None, "tags": ["a"]},
    )
    m = roundtrip(convert.request_to_proto, convert.request_from_proto, body)
    assert not m.HasField("max_tokens")
    assert not m.messages[2].HasField("content_blocks")  # a list with a non-object item is kept verbatim


def test_members_named_like_proto_fields_stay_members() -> None:
    # JSON members spelled like proto-only names (extra_json, oneof case names) are plain members.
    odd = {"extra_json": 1, "unknown_json": "x", "content_text": "y", "system_blocks": [], "items": [1]}
    body = request(messages=[{"role": "user", "content": "hi", **odd}], **odd)
    m = roundtrip(convert.request_to_proto, convert.request_from_proto, body)
    assert m.WhichOneof("system") is None
    block = {"type": "text", "text": "t", **odd}
    roundtrip(convert.message_to_proto, convert.message_from_proto, response([block]))
    roundtrip(convert.event_to_proto, convert.event_from_proto, {"type": "ping", **odd})


def test_integer_and_float_stay_distinct() -> None:
    for n in (1, 1.0, 0, -0.0, 2**53 + 1, 2**64, 1e300):
        tool_use = {"type": "tool_use", "id": "t", "name": "f", "input": {"n": n, "nested": [n, {"n": n}]}}
        body = request(messages=[{"role": "assistant", "content": [tool_use]}])
        back = convert.request_from_proto(convert.request_to_proto(body))
        assert encoded(back) == encoded(body)
        assert type(back["messages"][0]["content"][0]["input"]["n"]) is type(n)
    # A double field receives 1 (an int): it does not fit, so it rides in extra_json as 1.
    for value in (1, 1.0, 0.7):
        body = request(messages=[], temperature=value)
        back = convert.request_from_proto(convert.request_to_proto(body))
        assert encoded(back) == encoded(body)
        assert type(back["temperature"]) is type(value)
    assert (
        encoded(convert.request_from_proto(convert.request_to_proto(request(top_k=1.0)))).count(
            b'"top_k":1.0'
        )
        == 1
    )


def test_to_proto_rejects_non_objects() -> None:
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        convert.request_to_proto([])  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        convert.event_to_proto("ping")  # type: ignore[arg-type]


# --- bad proto input from a gRPC client ------------------------------------------------------------


def bad_request(body: dict[str, Any], tweak: Callable[[pb.CreateMessageRequest], None]) -> str:
    m = convert.request_to_proto(body)
    tweak(m)
    with pytest.raises(InvalidRequest) as err:
        convert.request_from_proto(m)
    assert err.value.error_type == "invalid_request_error"
    return err.value.message


CONVERSATION = request(
    messages=[
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "t", "name": "f", "input": {}},
                {"type": "future_block"},
            ],
        },
    ],
    tools=[
        dict(WEATHER_TOOL, input_examples=[{"city": "a"}, {"city": "b"}]),
        {"type": "bash_20250124", "name": "bash"},
    ],
)


def test_invalid_json_text_names_the_path() -> None:
    def bad_input(m: pb.CreateMessageRequest) -> None:
        m.messages[1].content_blocks.items[1].tool_use.input = "{not json"

    assert bad_request(CONVERSATION, bad_input) == "messages.1.content.1.input: invalid JSON text"

    def bad_example(m: pb.CreateMessageRequest) -> None:
        m.tools[0].custom.input_examples[1] = "[1,"

    assert bad_request(CONVERSATION, bad_example) == "tools.0.input_examples.1: invalid JSON text"

    def bad_unknown(m: pb.CreateMessageRequest) -> None:
        m.messages[1].content_blocks.items[2].unknown_json = "[1]"

    assert bad_request(CONVERSATION, bad_unknown) == "messages.1.content.2.unknown_json: not a JSON object"


def test_invalid_extra_json_names_the_path() -> None:
    def not_object(m: pb.CreateMessageRequest) -> None:
        m.messages[0].extra_json = "[]"

    assert bad_request(CONVERSATION, not_object) == "messages.0.extra_json: not a JSON object"

    def not_json(m: pb.CreateMessageRequest) -> None:
        m.extra_json = "{"

    assert bad_request(CONVERSATION, not_json) == "extra_json: invalid JSON text"

    def duplicate(m: pb.CreateMessageRequest) -> None:
        m.messages[1].content_blocks.items[0].text.extra_json = '{"text": "again"}'

    message = bad_request(CONVERSATION, duplicate)
    assert message.startswith("messages.1.content.0.extra_json: member(s) 'text' also set by a typed field")


def test_invalid_cases_name_the_path() -> None:
    def empty_block(m: pb.CreateMessageRequest) -> None:
        m.messages[1].content_blocks.items.add()

    assert bad_request(CONVERSATION, empty_block) == "messages.1.content.3: no case of oneof `block` is set"

    def wrong_version(m: pb.CreateMessageRequest) -> None:
        m.tools[1].bash.type = "bash"

    assert bad_request(CONVERSATION, wrong_version) == "tools.1.type: must be bash_<digits>"

    def wrong_custom(m: pb.CreateMessageRequest) -> None:
        m.tools[0].custom.type = "bash_20250124"

    assert bad_request(CONVERSATION, wrong_custom) == "tools.0.type: must be 'custom' or absent"

    event = pb.StreamEvent()
    with pytest.raises(InvalidRequest, match="no case of oneof `event` is set"):
        convert.event_from_proto(event)
    with pytest.raises(TypeError):
        convert.request_from_proto(pb.Message())  # type: ignore[arg-type]


def test_proto_built_by_a_grpc_client() -> None:
    # What a Go/Java client would build by hand: typed fields, JSON text, extra_json for the rest.
    m = pb.CreateMessageRequest(
        model="claude-sonnet-4-6",
        max_tokens=256,
        messages=[
            pb.MessageParam(role="user", content_text="Weather?"),
            pb.MessageParam(
                role="assistant",
                content_blocks=pb.ContentBlockList(
                    items=[
                        pb.ContentBlock(
                            tool_use=pb.ToolUseBlock(id="t1", name="get_weather", input='{"city":"Oslo"}')
                        )
                    ]
                ),
            ),
        ],
        tools=[pb.Tool(custom=pb.CustomTool(name="get_weather", input_schema='{"type":"object"}'))],
        tool_choice=pb.ToolChoice(auto=pb.ToolChoiceAuto()),
        extra_json='{"new_field": 1}',
    )
    assert convert.request_from_proto(m) == {
        "model": "claude-sonnet-4-6",
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}}
                ],
            },
        ],
        "max_tokens": 256,
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
        "new_field": 1,
    }


# --- the plans cover the whole schema -------------------------------------------------------------


def test_every_message_compiles() -> None:
    skipped = {"GetModelRequest"}  # a path parameter, not a JSON object
    for name, desc in pb.DESCRIPTOR.message_types_by_name.items():
        if name not in skipped:
            assert plan_for(desc).kind in {"struct", "union", "array"}


# --- property tests ---------------------------------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(S.request)
def test_requests_round_trip(body: dict[str, Any]) -> None:
    roundtrip(convert.request_to_proto, convert.request_from_proto, body)


@PROPERTY
@given(S.message)
def test_messages_round_trip(msg: dict[str, Any]) -> None:
    roundtrip(convert.message_to_proto, convert.message_from_proto, msg)


@PROPERTY
@given(S.event)
def test_events_round_trip(event: dict[str, Any]) -> None:
    roundtrip(convert.event_to_proto, convert.event_from_proto, event)


@PROPERTY
@given(S.input_block)
def test_blocks_round_trip(block: dict[str, Any]) -> None:
    roundtrip(convert.request_to_proto, convert.request_from_proto, request(messages=[user(block)]))


@PROPERTY
@given(S.count_tokens_request, S.model_info, S.list_models_response)
def test_other_bodies_round_trip(count: dict[str, Any], model: dict[str, Any], page: dict[str, Any]) -> None:
    roundtrip(convert.count_tokens_request_to_proto, convert.count_tokens_request_from_proto, count)
    roundtrip(convert.model_info_to_proto, convert.model_info_from_proto, model)
    roundtrip(convert.list_models_response_to_proto, convert.list_models_response_from_proto, page)


@PROPERTY
@given(S.json_object)
def test_any_json_object_round_trips(value: dict[str, Any]) -> None:
    # Not even an API shape: still lossless at every entry point.
    roundtrip(convert.request_to_proto, convert.request_from_proto, value)
    roundtrip(convert.message_to_proto, convert.message_from_proto, value)
    roundtrip(convert.event_to_proto, convert.event_from_proto, value)


def test_json_text_nested_deeper_than_the_decoder_recurses_is_invalid() -> None:
    # msgspec raises RecursionError there (found by the grpc_fuzz campaign): an InvalidRequest
    # naming the field, like any other invalid JSON text.
    from sidecar.messages.v1 import messages_pb2 as pb

    deep = "[" * 100_000 + "]" * 100_000
    for message in (
        pb.CreateMessageRequest(model="m", context_management=deep),
        pb.CreateMessageRequest(model="m", extra_json='{"a":' * 50_000 + "1" + "}" * 50_000),
    ):
        with pytest.raises(InvalidRequest, match="invalid JSON text"):
            convert.request_from_proto(message)
    request = pb.CreateMessageRequest(model="m")
    request.tools.add().unknown_json = deep
    with pytest.raises(InvalidRequest, match=r"tools\.0\.unknown_json: invalid JSON text"):
        convert.request_from_proto(request)
