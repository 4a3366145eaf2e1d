"""Chat completion -> Anthropic Message, and the helpers the stream shares."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import SidecarError, UpstreamProtocolError
from sidecar.translate.openai_response import (
    ResponseOptions,
    error_from_openai,
    find_stop_sequence,
    map_finish_reason,
    message_from_completion,
    usage_from_openai,
)

OPTIONS = ResponseOptions(model="claude-x", input_estimate=7, stop_sequences=("END",))


def completion(message: dict[str, Any], finish: str | None = "stop", **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
    choice.update(extra.pop("choice", {}))
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "up", "choices": [choice], **extra}


def test_everything_in_one_message() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "prompt_tokens_details": {"cached_tokens": 60},
        "completion_tokens_details": {"reasoning_tokens": 20},
    }
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"type": "function", "function": {"name": "g", "arguments": ""}},
    ]
    msg = message_from_completion(
        completion(
            {"reasoning_content": "think", "content": "text", "tool_calls": calls}, "tool_calls", usage=usage
        ),
        OPTIONS,
        "msg_1",
    )
    assert msg["content"][:3] == [
        {"type": "thinking", "thinking": "think", "signature": ""},
        {"type": "text", "text": "text"},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
    ]
    assert msg["content"][3]["id"].startswith("toolu_") and msg["content"][3]["input"] == {}
    assert (msg["id"], msg["model"], msg["stop_reason"], msg["stop_sequence"]) == (
        "msg_1",
        "claude-x",
        "tool_use",
        None,
    )
    assert msg["usage"] == {
        "input_tokens": 40,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
        "output_tokens": 50,
        "output_tokens_details": {"thinking_tokens": 20},
    }


def test_refusal_omitted_thinking_and_upstream_model() -> None:
    options = ResponseOptions(
        model="claude-x", input_estimate=7, omit_thinking=True, model_from_upstream=True
    )
    msg = message_from_completion(
        completion({"reasoning": "secret", "content": None, "refusal": "No."}), options, "m"
    )
    assert msg["content"] == [
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "text", "text": "No."},
    ]
    assert msg["stop_reason"] == "refusal" and msg["stop_details"] == {"type": "refusal"}
    assert msg["model"] == "up"
    assert msg["usage"]["input_tokens"] == 7 and msg["usage"]["output_tokens"] > 0  # estimates


@pytest.mark.parametrize(
    ("finish", "calls", "expected"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("function_call", True, "tool_use"),
        ("stop", True, "tool_use"),
        ("content_filter", False, "refusal"),
        ("abort", False, "end_turn"),
        (None, False, "end_turn"),
    ],
)
def test_finish_reasons(finish: str | None, calls: bool, expected: str) -> None:
    assert map_finish_reason(finish, calls) == expected


def test_stop_sequences() -> None:
    assert find_stop_sequence("end_turn", "END", "", ("END",)) == "END"
    assert find_stop_sequence("end_turn", 128009, "text END", ("END",)) == "END"  # kept in output
    assert find_stop_sequence("end_turn", None, "text", ("END",)) is None
    assert find_stop_sequence("max_tokens", "END", "END", ("END",)) is None
    msg = message_from_completion(completion({"content": "a b"}, choice={"stop_reason": "END"}), OPTIONS, "m")
    assert (msg["stop_reason"], msg["stop_sequence"]) == ("stop_sequence", "END")


def test_usage_without_details_or_at_all() -> None:
    assert usage_from_openai({"prompt_tokens": 5, "completion_tokens": 2}, 9, 9) == {
        "input_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 2,
    }
    assert usage_from_openai(None, 9, 3)["input_tokens"] == 9


@pytest.mark.parametrize(
    ("error", "status", "expected"),
    [
        ({"message": "m", "type": "x"}, 429, ("rate_limit_error", "m")),
        ({"message": "m"}, 503, ("overloaded_error", "m")),
        ({"message": "m", "code": 400, "type": "BadRequestError"}, None, ("invalid_request_error", "m")),
        ({"message": "m", "code": "429"}, None, ("rate_limit_error", "m")),
        ({"message": "m", "type": "server_error", "code": None}, None, ("api_error", "m")),
        ({"message": "m", "type": "invalid_request_error"}, None, ("invalid_request_error", "m")),
        ({"type": "overloaded"}, None, ("overloaded_error", "upstream error")),
        ("plain words", None, ("api_error", "plain words")),
    ],
)
def test_error_mapping(error: object, status: int | None, expected: tuple[str, str]) -> None:
    assert error_from_openai(error, status) == expected


def test_bad_completions() -> None:
    with pytest.raises(SidecarError) as info:
        message_from_completion({"error": {"message": "nope", "type": "rate_limit_exceeded"}}, OPTIONS, "m")
    assert (info.value.error_type, info.value.status) == ("rate_limit_error", 429)
    with pytest.raises(UpstreamProtocolError):
        message_from_completion({"choices": []}, OPTIONS, "m")
    bad = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]
    with pytest.raises(UpstreamProtocolError, match="not a JSON object"):
        message_from_completion(completion({"tool_calls": bad}), OPTIONS, "m")
