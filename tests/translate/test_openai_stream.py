"""The streaming state machine beyond the golden traces: edge cases, one rule at a time."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.core.grammar import check_events
from sidecar.errors import UpstreamProtocolError
from sidecar.translate.openai_response import ResponseOptions
from sidecar.translate.openai_stream import StreamTranslator
from tests.fakes.openai_api import chunk, usage_chunk

OPTIONS = ResponseOptions(model="claude-x", input_estimate=5)


def run(chunks: list[Any], *, clean: bool = True, options: ResponseOptions = OPTIONS) -> list[dict[str, Any]]:
    tr = StreamTranslator(options, "msg_t")
    out: list[dict[str, Any]] = []
    for c in chunks:
        out += tr.feed(c)
    out += tr.finish(clean=clean)
    assert check_events(out) == []
    assert tr.feed(chunk({"content": "late"})) == [] and tr.finish(clean=True) == []
    return out


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_empty_stream_still_has_a_message() -> None:
    events = run([])
    assert kinds(events) == ["message_start", "message_delta", "message_stop"]
    assert events[1]["usage"]["output_tokens"] == 0


def test_cut_before_anything_is_an_error_only() -> None:
    assert kinds(run([], clean=False)) == ["error"]


def test_cut_after_finish_reason_ends_cleanly() -> None:
    events = run([chunk({"content": "a"}), chunk({}, "stop")], clean=False)
    assert kinds(events)[-2:] == ["message_delta", "message_stop"]


def test_usage_before_finish_waits_for_a_later_report() -> None:
    tr = StreamTranslator(OPTIONS, "m")
    out = tr.feed({**chunk({"content": "a"}), "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    out += tr.feed(chunk({}, "stop"))
    assert not tr.done  # the finish chunk had no usage: the final report may follow
    out += tr.feed(usage_chunk(3, 2))
    assert tr.done and out[-2]["usage"]["output_tokens"] == 2


def test_usage_in_the_finish_chunk_ends_at_once() -> None:
    tr = StreamTranslator(OPTIONS, "m")
    tr.feed(chunk({"content": "a"}))
    out = tr.feed({**chunk({}, "stop"), "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    assert tr.done and kinds(out)[-2:] == ["message_delta", "message_stop"]


def test_omitted_thinking_keeps_the_block() -> None:
    options = ResponseOptions(model="m", input_estimate=1, omit_thinking=True)
    events = run([chunk({"reasoning_content": "secret"}), chunk({"content": "hi"})], options=options)
    assert not any(e.get("delta", {}).get("type") == "thinking_delta" for e in events)
    assert events[1]["content_block"]["type"] == "thinking"


def test_name_after_id_and_other_choices_ignored() -> None:
    events = run(
        [
            chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"arguments": '{"a"'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1}"}}]}),
            {"choices": [{"index": 1, "delta": {"content": "other choice"}, "finish_reason": None}]},
            chunk({}, "tool_calls"),
        ]
    )
    start = events[1]
    assert start["content_block"] == {"type": "tool_use", "id": "c1", "name": "f", "input": {}}
    assert events[2]["delta"]["partial_json"] == '{"a":1}'
    assert "other choice" not in str(events)


def test_text_after_a_tool_call_closes_it() -> None:
    events = run(
        [
            chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]}),
            chunk({"content": "and then"}),
        ]
    )
    assert [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"] == [
        "tool_use",
        "text",
    ]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_arguments_after_a_call_ended_are_a_protocol_error() -> None:
    tr = StreamTranslator(OPTIONS, "m")
    tr.feed(chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]}))
    tr.feed(chunk({"content": "x"}))
    with pytest.raises(UpstreamProtocolError):
        tr.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "more"}}]}))
    with pytest.raises(UpstreamProtocolError):
        tr.feed([1, 2])


def test_refusal_after_text_is_its_own_block() -> None:
    events = run([chunk({"content": "Sure"}), chunk({"refusal": "Actually no"}), chunk({}, "content_filter")])
    assert [e["index"] for e in events if e["type"] == "content_block_start"] == [0, 1]
    assert events[-2]["delta"] == {
        "stop_reason": "refusal",
        "stop_sequence": None,
        "stop_details": {"type": "refusal"},
    }


def test_stop_sequence_kept_in_the_text() -> None:
    options = ResponseOptions(model="m", input_estimate=1, stop_sequences=("###",))
    events = run([chunk({"content": "a #"}), chunk({"content": "##"}), chunk({}, "stop")], options=options)
    assert events[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "###"}


def test_error_chunk_mid_block() -> None:
    events = run([chunk({"content": "a"}), {"error": {"message": "boom", "code": 500}}])
    assert events[-1] == {"type": "error", "error": {"type": "api_error", "message": "boom"}}


def test_fail_is_terminal() -> None:
    tr = StreamTranslator(OPTIONS, "m")
    tr.feed(chunk({"content": "a"}))
    assert tr.fail("timeout_error", "slow") == [
        {"type": "error", "error": {"type": "timeout_error", "message": "slow"}}
    ]
    assert tr.fail("api_error", "again") == []
