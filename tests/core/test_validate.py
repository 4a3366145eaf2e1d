"""The validator: spec-shaped requests pass, anything else is an InvalidRequest, never a crash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.core.validate import validate_count_tokens, validate_messages
from sidecar.errors import InvalidRequest

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "model",
    "messages",
    "max_tokens",
    "stream",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "stop_sequences",
    "metadata",
    "temperature",
    "top_k",
]
block_types = st.sampled_from(
    [
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "search_result",
        "server_tool_use",
        "novel",
    ]
)
blocks = st.fixed_dictionaries(
    {"type": block_types},
    optional={
        k: json_values
        for k in [
            "text",
            "source",
            "id",
            "name",
            "input",
            "tool_use_id",
            "content",
            "thinking",
            "signature",
            "data",
            "title",
            "is_error",
        ]
    },
)
messages = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "role": st.sampled_from(["user", "assistant", "system", "robot"]) | json_values,
            "content": st.text(max_size=5) | st.lists(blocks, max_size=3) | json_values,
        },
    ),
    max_size=3,
)
bodies = (
    st.fixed_dictionaries({}, optional={k: (messages if k == "messages" else json_values) for k in KEYS})
    | json_values
)


@settings(max_examples=400, deadline=None)
@given(bodies, st.sampled_from([None, "2023-06-01", "2026-10-21"]))
def test_anything_is_accepted_or_invalid_request(body: Any, version: str | None) -> None:
    for validate in (validate_messages, validate_count_tokens):
        try:
            validate(body, version)
        except InvalidRequest as exc:
            assert exc.status == 400 and exc.message


def test_spec_shaped_request_passes() -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "doc"},
                        "citations": {"enabled": True},
                    },
                    {
                        "type": "document",
                        "source": {"type": "content", "content": [{"type": "text", "text": "c"}]},
                    },
                    {
                        "type": "search_result",
                        "source": "s",
                        "title": "t",
                        "content": [{"type": "text", "text": "r"}],
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xx"},
                    {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {"a": 1}},
                    {
                        "type": "server_tool_use",
                        "id": "srvtoolu_1",
                        "name": "web_search",
                        "input": {"query": "q"},
                    },
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "ok"}],
                        "is_error": False,
                    }
                ],
            },
            {"role": "assistant", "content": ""},
        ],
        "tools": [
            {"name": "t", "input_schema": {"type": "object"}, "strict": True},
            {"type": "bash_20250124", "name": "bash"},
        ],
        "tool_choice": {"type": "tool", "name": "t", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "stop_sequences": ["x"],
        "metadata": {"user_id": None},
        "output_config": {"effort": "high"},
        "brand_new_field": {"anything": [1]},
    }
    assert validate_messages(body, "2026-10-21") is body


@settings(max_examples=600, deadline=None)
@given(blocks | json_values)
def test_fast_path_never_accepts_what_the_full_check_rejects(block: Any) -> None:
    from sidecar.core.validate import _block, _fast_ok

    if _fast_ok(block):
        _block(block, "b")  # must not raise


@given(
    st.sampled_from(["text", "tool_use", "tool_result", "thinking"]),
    st.dictionaries(
        st.sampled_from(
            ["text", "id", "name", "input", "tool_use_id", "content", "is_error", "thinking", "signature"]
        ),
        json_values,
        max_size=6,
    ),
)
def test_fast_path_agrees_on_known_types(btype: str, fields: dict[str, Any]) -> None:
    from sidecar.core.validate import _block, _fast_ok

    block = {"type": btype, **fields}
    if _fast_ok(block):
        _block(block, "b")


def _refused(body: dict[str, Any], start: str) -> None:
    for validate in (validate_messages, validate_count_tokens):
        with pytest.raises(InvalidRequest) as info:
            validate(body, None)
        assert str(info.value).startswith(start), str(info.value)


def test_custom_tool_names_up_to_128_characters() -> None:
    def with_tool(name: str) -> dict[str, Any]:
        tool = {"name": name, "input_schema": {"type": "object"}}
        return {
            "model": "m",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [tool],
        }

    mcp = "mcp__" + "s" * 60 + "__" + "t" * 61  # 128 characters: an MCP name from a coding agent
    for validate in (validate_messages, validate_count_tokens):
        validate(with_tool(mcp), None)
    for bad in (mcp + "x", "", "a b"):
        _refused(with_tool(bad), "tools.0.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'")


def test_beta_system_message_with_only_output_config() -> None:
    def with_system(**message: Any) -> dict[str, Any]:
        turns = [{"role": "user", "content": "hi"}, {"role": "system", **message}]
        return {"model": "m", "max_tokens": 1, "messages": turns}

    for validate in (validate_messages, validate_count_tokens):
        validate(with_system(output_config={"effort": "low"}), None)
        validate(with_system(output_config={"effort": "max"}, clear_at="next_user_message"), None)
        validate(with_system(content="be brief", output_config={}), None)
    # Neither content nor output_config fields; and only system messages may go without content.
    for message in ({}, {"output_config": {}}, {"output_config": None}, {"clear_at": "never"}):
        _refused(with_system(**message), "messages.1.content: Field required")
    body = with_system(output_config={"effort": "low"})
    body["messages"][1]["role"] = "user"
    _refused(body, "messages.1.content: Field required")


def test_check_messages_says_when_no_block_can_reference_a_file() -> None:
    """The pipeline skips looking for file references (a scan of the whole body) when validation
    saw only plain content blocks; any block that could hold a file source is not plain."""
    from sidecar.core.validate import check_count_tokens, check_messages

    def body(*content: dict[str, object]) -> dict[str, object]:
        return {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": list(content)}]}

    text = {"type": "text", "text": "hi"}
    use = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [text]}
    thinking = {"type": "thinking", "thinking": "t", "signature": "s"}
    plain = body(text, use, result, thinking)
    assert check_messages(plain) == (plain, True)
    assert check_count_tokens(plain) == (plain, True)
    assert check_messages({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})[1]
    image = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
    document = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "x"},
    }
    nested = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [text, image]}
    for block in (image, document, nested, {"type": "server_tool_use", "id": "s", "name": "n", "input": {}}):
        assert check_messages(body(text, block))[1] is False
        assert check_count_tokens(body(block))[1] is False
