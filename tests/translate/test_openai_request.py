"""Anthropic request -> chat-completions body: translations, drops and refusals, field by field."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import InvalidRequest, UnsupportedFeature
from sidecar.translate.openai_request import RequestOptions, to_chat_completions
from tests.fakes.openai_api import check_request

TOOL = {"name": "f", "input_schema": {"type": "object", "properties": {}}}


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **kw}


def translate(b: dict[str, Any], **options: Any) -> dict[str, Any]:
    out = to_chat_completions(b, "up-model", RequestOptions(**options))
    check_request(out, accept_top_k=options.get("send_top_k", False))  # what a strict server accepts
    return out


def test_minimal() -> None:
    assert translate(body()) == {
        "model": "up-model",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 10,
    }


def test_system_string_blocks_and_mid_conversation() -> None:
    out = translate(
        body(
            system=[
                {"type": "text", "text": "a"},
                {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}},
            ],
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": "ok"},
            ],
        ),
        system_role="developer",
    )
    assert out["messages"] == [
        {"role": "developer", "content": "a\nb"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
        {"role": "developer", "content": "be nice"},
        {"role": "user", "content": "ok"},
    ]


def test_stream_and_options() -> None:
    b = body(stream=True, top_k=3, temperature=1.0, stop_sequences=[])
    assert translate(b)["stream_options"] == {"include_usage": True}
    assert "stop" not in translate(b) and "top_k" not in translate(b)
    assert translate(b, send_top_k=True)["top_k"] == 3
    assert "stream_options" not in translate(b, send_stream_options=False)
    out = translate(b, max_tokens_field="max_completion_tokens")
    assert out["max_completion_tokens"] == 10 and "max_tokens" not in out


@pytest.mark.parametrize(
    ("thinking", "config", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
        ({"type": "enabled", "budget_tokens": 8192}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 20000}, None, "high"),
        ({"type": "adaptive"}, None, None),
        ({"type": "disabled"}, None, None),
        (None, {"effort": "max"}, "high"),
        ({"type": "adaptive"}, {"effort": "low"}, "low"),
    ],
)
def test_thinking_and_effort(thinking: Any, config: Any, effort: str | None) -> None:
    extra: dict[str, Any] = {"max_tokens": 30000}
    if thinking:
        extra["thinking"] = thinking
    if config:
        extra["output_config"] = config
    out = translate(body(**extra))
    assert out.get("reasoning_effort") == effort
    assert "reasoning_effort" not in translate(body(**extra), send_reasoning_effort=False)


def test_tools_are_only_sent_with_tools() -> None:
    out = translate(body(tool_choice={"type": "auto", "disable_parallel_tool_use": True}))
    assert "tool_choice" not in out and "parallel_tool_calls" not in out
    tool = {
        **TOOL,
        "strict": True,
        "cache_control": {"type": "ephemeral"},
        "input_examples": [{}],
        "defer_loading": False,
    }
    out = translate(body(tools=[tool], tool_choice={"type": "none", "disable_parallel_tool_use": True}))
    assert out["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": TOOL["input_schema"], "strict": True}}
    ]
    assert out["tool_choice"] == "none" and "parallel_tool_calls" not in out


def test_tool_result_ordering_and_content() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "after"},
                {
                    "type": "tool_result",
                    "tool_use_id": "a",
                    "content": [
                        {"type": "text", "text": "one"},
                        {"type": "text", "text": "two"},
                        {
                            "type": "search_result",
                            "source": "s",
                            "title": "t",
                            "content": [{"type": "text", "text": "r"}],
                        },
                        {"type": "tool_reference", "tool_name": "g"},
                    ],
                },
            ],
        },
    ]
    out = translate(body(messages=messages, tools=[TOOL]))
    assert out["messages"][1] == {
        "role": "assistant",
        "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    assert out["messages"][2] == {
        "role": "tool",
        "tool_call_id": "a",
        "content": "one\ntwo\nt (s)\nr\ntool_reference: g",
    }
    assert out["messages"][3] == {"role": "user", "content": "after"}


def test_empty_error_result_and_thinking_only_assistant() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}]},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {"k": [1]}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "is_error": True}]},
        {"role": "assistant", "content": ""},
    ]
    out = translate(body(messages=messages, tools=[TOOL]))
    assert [m["role"] for m in out["messages"]] == ["user", "user", "assistant", "tool"]
    assert out["messages"][3]["content"] == "Error"
    assert out["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"k":[1]}'


def test_pdf_only_when_the_upstream_takes_files() -> None:
    doc = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
        "title": "r.pdf",
    }
    b = body(messages=[{"role": "user", "content": [doc]}])
    with pytest.raises(UnsupportedFeature, match=r"^messages\.0\.content\.0: PDF"):
        translate(b)
    part = translate(b, send_pdf=True)["messages"][0]["content"][0]
    assert part == {
        "type": "file",
        "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBE"},
    }


@pytest.mark.parametrize(
    ("b", "error", "field"),
    [
        (
            body(tools=[{"type": "code_execution_20250825", "name": "code_execution"}]),
            UnsupportedFeature,
            "tools.0.type",
        ),
        (body(container="c1", mcp_servers=[]), UnsupportedFeature, "mcp_servers"),
        (body(max_tokens=0), UnsupportedFeature, "max_tokens"),
        (body(output_config={"format": {"type": "regex"}}), UnsupportedFeature, "output_config.format"),
        (body(output_config={"effort": "huge"}), InvalidRequest, "output_config.effort"),
        (
            body(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "zz"}]}]),
            InvalidRequest,
            "messages.0.content.0.tool_use_id",
        ),
        (
            body(
                messages=[
                    {"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]}
                ]
            ),
            InvalidRequest,
            "messages.0.content.0.type",
        ),
        (
            body(
                messages=[
                    {"role": "user", "content": [{"type": "web_search_tool_result", "tool_use_id": "s"}]}
                ]
            ),
            UnsupportedFeature,
            "messages.0.content.0.type",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "brand_new", "x": 1}]}]),
            UnsupportedFeature,
            "messages.0.content.0.type",
        ),
        (
            body(
                messages=[
                    {"role": "user", "content": "a"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}
                        ],
                    },
                    {"role": "user", "content": "b"},
                ]
            ),
            UnsupportedFeature,
            "messages.1.content.0.type",
        ),
        (
            body(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "pre"}]),
            UnsupportedFeature,
            "messages.1",
        ),
        (body(system=[{"type": "image", "source": {}}]), UnsupportedFeature, "system.0.type"),
        (
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}
                        ],
                    }
                ]
            ),
            UnsupportedFeature,
            "messages.0.content.0.source.type",
        ),
    ],
)
def test_refusals_name_the_field(b: dict[str, Any], error: type[Exception], field: str) -> None:
    with pytest.raises(error) as info:
        to_chat_completions(b, "m")
    assert str(info.value).startswith(field + ":"), str(info.value)


def test_dropped_fields_are_dropped() -> None:
    out = translate(
        body(
            cache_control={"type": "ephemeral"},
            service_tier="auto",
            container="c",
            inference_geo="us",
            speed="fast",
            diagnostics={"previous_message_id": None},
            context_management={"edits": []},
            metadata={"user_id": None},
        )
    )
    assert set(out) == {"model", "messages", "max_tokens"}


def test_tool_names_longer_than_64_are_refused_by_name() -> None:
    ok = "f" * 64
    assert translate(body(tools=[{**TOOL, "name": ok}]))["tools"][0]["function"]["name"] == ok
    long = "mcp__server__" + "t" * 60
    with pytest.raises(UnsupportedFeature) as info:
        to_chat_completions(body(tools=[TOOL, {**TOOL, "name": long}]), "m")
    assert info.value.status == 400 and info.value.error_type == "invalid_request_error"
    assert str(info.value).startswith(f"tools.1.name: tool {long!r} is 73 characters long;")
    assert "at most 64" in str(info.value)


def test_system_message_with_only_output_config_is_dropped() -> None:
    turns = [
        {"role": "user", "content": "hi"},
        {"role": "system", "output_config": {"effort": "low"}, "clear_at": "next_user_message"},
        {"role": "assistant", "content": "yes"},
        {"role": "user", "content": "more"},
    ]
    out = translate(body(messages=turns))
    assert out["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yes"},
        {"role": "user", "content": "more"},
    ]


def test_pdf_inside_a_tool_result_is_refused_even_with_send_pdf() -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}
    b = body(
        tools=[TOOL],
        messages=[
            {"role": "user", "content": "read it"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [pdf]}]},
        ],
    )
    # Chat completions' tool messages take text parts only (README, OpenAI table: tool_result).
    with pytest.raises(UnsupportedFeature) as info:
        to_chat_completions(b, "m", RequestOptions(send_pdf=True))
    assert str(info.value) == (
        "messages.2.content.0.content.0: a file part cannot go into a tool result "
        "(a chat-completions tool message takes text only)"
    )
