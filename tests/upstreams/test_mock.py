"""The built-in mock model, driven directly with Calls."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import time
from typing import Any

import pytest

from sidecar.core import Answer, Call, StreamEvent, Target
from sidecar.errors import (
    ConfigError,
    InvalidRequest,
    NoRoute,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    SidecarError,
    Timeout,
    UpstreamError,
)
from sidecar.upstreams.mock import MockConfig, MockUpstream
from sidecar.upstreams.mock import upstream as mock_upstream
from sidecar.upstreams.mock.directives import parse_directives, strip_directives
from sidecar.upstreams.mock.text import IMAGE_TOKENS, split_fragments, split_words

TARGET = Target("mock", "mock-1")
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city", "unit"],
    },
}
CLOCK = {
    "name": "get_time",
    "input_schema": {
        "type": "object",
        "properties": {
            "zone": {"type": "string"},
            "precise": {"type": "boolean"},
            "offset": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "extra": {"type": "object"},
        },
    },
}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


def body(text: str | list[dict[str, Any]] = "Hello there", **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": "mock-1",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}],
    }
    out.update(fields)
    return out


def call(data: dict[str, Any], *, stream: bool = False, endpoint: str = "messages") -> Call:
    return Call(
        endpoint=endpoint,
        body=data,
        raw=None,
        model=str(data.get("model", "mock-1")),
        stream=stream,
        request_id="req_test",
        door="http",
    )


async def ask(
    data: dict[str, Any], upstream: MockUpstream | None = None, target: Target = TARGET
) -> dict[str, Any]:
    answer = await (upstream or MockUpstream("mock")).send(call(data), target)
    assert answer.events is None and answer.message is not None
    return answer.message


async def ask_stream(data: dict[str, Any], upstream: MockUpstream | None = None) -> list[StreamEvent]:
    answer = await (upstream or MockUpstream("mock")).send(call(data, stream=True), TARGET)
    assert answer.events is not None and answer.message is None
    return [event async for event in answer.events]


def text_of(message: dict[str, Any]) -> str:
    return "".join(b["text"] for b in message["content"] if b["type"] == "text")


def check_grammar(events: list[StreamEvent]) -> None:
    """message_start (start delta* stop)* message_delta message_stop, pings anywhere, error terminal."""
    names = [e.name for e in events]
    assert names[0] == "message_start", names
    for event in events:
        assert event.data["type"] == event.name
    expected_index, open_index, state = 0, None, "blocks"
    for event in events[1:]:
        data = event.data
        assert state != "done", f"event after the end: {names}"
        if event.name == "ping":
            continue
        if event.name == "error":
            state = "done"
        elif event.name == "content_block_start":
            assert state == "blocks" and open_index is None
            assert data["index"] == expected_index
            open_index = expected_index
        elif event.name == "content_block_delta":
            assert data["index"] == open_index
        elif event.name == "content_block_stop":
            assert data["index"] == open_index
            open_index, expected_index = None, expected_index + 1
        elif event.name == "message_delta":
            assert open_index is None and state in ("blocks", "delta")
            assert set(data["delta"]) >= {"stop_reason", "stop_sequence"}
            assert isinstance(data["usage"]["output_tokens"], int)
            state = "delta"
        elif event.name == "message_stop":
            assert state == "delta"
            state = "done"
        else:
            raise AssertionError(f"unexpected event {event.name}")
    assert state == "done", names


def accumulate(events: list[StreamEvent]) -> dict[str, Any]:
    """Build the final Message from a stream, the way the SDKs do."""
    message: dict[str, Any] = json.loads(json.dumps(events[0].data["message"]))
    partial: dict[int, str] = {}
    for event in events[1:]:
        data = event.data
        if event.name == "content_block_start":
            message["content"].append(dict(data["content_block"]))
        elif event.name == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif event.name == "content_block_stop" and data["index"] in partial:
            message["content"][data["index"]]["input"] = json.loads(partial.pop(data["index"]))
        elif event.name == "message_delta":
            message.update(data["delta"])
            message["usage"].update(data["usage"])
    return message


# --- determinism and directives ----------------------------------------------------------------


async def test_same_request_same_answer() -> None:
    first, second = await ask(body()), await ask(body())
    assert first == second
    assert first["id"].startswith("msg_01") and len(first["id"]) > 20
    assert list(first) == ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"]
    assert first["type"] == "message" and first["role"] == "assistant" and first["model"] == "mock-1"
    assert first["stop_reason"] == "end_turn" and first["stop_sequence"] is None
    assert len(text_of(first).split()) == 24
    assert first["usage"] == {
        "input_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 24,
        "service_tier": "standard",
    }


async def test_answer_depends_on_model_and_text() -> None:
    base = text_of(await ask(body()))
    assert text_of(await ask(body("Something else"))) != base
    assert text_of(await ask(body(), target=Target("mock", "claude-sonnet-4-6"))) != base
    # Another turn before the last user text changes the id, not the words.
    longer = body()
    longer["messages"] = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}] + longer[
        "messages"
    ]
    other = await ask(longer)
    assert text_of(other) == base and other["id"] != (await ask(body()))["id"]


def test_same_answer_in_another_process() -> None:
    code = (
        "import asyncio, json, sys\n"
        "from sidecar.core import Call\n"
        "from sidecar.core import Target\n"
        "from sidecar.upstreams.mock import MockUpstream\n"
        "b = {'model': 'mock-1', 'max_tokens': 100, 'messages': [{'role': 'user', 'content': 'Hello there'}]}\n"
        "c = Call(endpoint='messages', body=b, raw=None, model='mock-1', stream=False, request_id='r', door='http')\n"
        "a = asyncio.run(MockUpstream('m').send(c, Target('mock', 'mock-1')))\n"
        "print(json.dumps(a.message))\n"
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1] == asyncio.run(ask(body(max_tokens=100)))


async def test_words_directive_and_config() -> None:
    message = await ask(body("[mock words=50] Hello there"))
    assert len(text_of(message).split()) == 50 and message["usage"]["output_tokens"] == 50
    # Directives are not part of the seed: the shorter answer starts the longer one.
    short = text_of(await ask(body()))
    assert text_of(message).startswith(short[:-1])
    configured = await ask(body(), MockUpstream("m", MockConfig(words=7)))
    assert len(text_of(configured).split()) == 7
    empty = await ask(body("[mock words=0]"))
    assert (
        empty["content"] == [] and empty["stop_reason"] == "end_turn" and empty["usage"]["output_tokens"] == 1
    )


async def test_echo_directive() -> None:
    message = await ask(body("Repeat [mock echo] after me"))
    assert text_of(message) == "Repeat after me"
    assert message["usage"]["output_tokens"] == 3
    blocks = [{"type": "text", "text": "[mock echo]"}, {"type": "text", "text": "two blocks"}]
    assert text_of(await ask(body(blocks))) == "two blocks"


async def test_unknown_or_bad_directive_is_invalid_request() -> None:
    for text in ("[mock wrods=5]", "[mock words=many]", "[mock error=bogus_error]", "[mock ttft_ms=-1]"):
        with pytest.raises(InvalidRequest):
            await ask(body(text))
    # Not a directive: only "[mock" followed by a space or "]" is one.
    assert len(text_of(await ask(body("[mockery] ok"))).split()) == 24


# What the directives and the word split were as regular expressions: the scans that replaced
# them must agree (found by the HTTP fuzz campaign: these were quadratic on long runs of
# whitespace or of unclosed "[mock", 100 KB of spaces held the event loop for about a minute).
_OLD_DIRECTIVE = re.compile(r"\[mock(?=[\s\]])([^\]]*)\]")
_OLD_STRIP = re.compile(r"\s*\[mock(?=[\s\]])[^\]]*\]")
_OLD_PIECE = re.compile(r"\s*\S+")


def _old_split_words(text: str) -> list[str]:
    pieces: list[str] = _OLD_PIECE.findall(text)
    tail = text[sum(map(len, pieces)) :]
    if tail:
        if pieces:
            pieces[-1] += tail
        else:
            pieces.append(tail)
    return pieces


def test_directive_and_word_scans_agree_with_the_regular_expressions() -> None:
    rng = random.Random(5)
    alphabet = ["[mock", "[mock ", "[mock]", " ", "\n", "\u00a0", "]", "[", "a", "x=1", "[mockx", "echo"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert strip_directives(text) == _OLD_STRIP.sub("", text), repr(text)
        assert split_words(text) == _old_split_words(text), repr(text)
        items = [item for m in _OLD_DIRECTIVE.finditer(text) for item in m.group(1).split()]
        if all(item in ("echo",) for item in items):  # a valid set: parsed, not refused
            assert parse_directives(text).echo == bool(items), repr(text)


async def test_long_runs_of_whitespace_or_unclosed_directives_take_no_time() -> None:
    for text in (" " * 200_000, "\n" * 200_000 + "[mock echo]", "[mock " * 40_000, "a" + " " * 200_000):
        started = time.perf_counter()
        strip_directives(text)
        split_words(text)
        with contextlib.suppress(InvalidRequest):
            parse_directives(text)
        assert time.perf_counter() - started < 1.0  # the regular expressions took minutes
    assert text_of(await ask(body("hello" + " " * 100_000 + "[mock echo]"))) == "hello"


# --- max_tokens and stop sequences -------------------------------------------------------------


async def test_max_tokens_truncates() -> None:
    full = text_of(await ask(body("[mock words=50] hi")))
    cut = await ask(body("[mock words=50] hi", max_tokens=10))
    assert cut["stop_reason"] == "max_tokens" and cut["stop_sequence"] is None
    assert text_of(cut) == "".join(split_words(full)[:10])
    assert cut["usage"]["output_tokens"] == 10
    exact = await ask(body("[mock words=10] hi", max_tokens=10))
    assert exact["stop_reason"] == "end_turn" and exact["usage"]["output_tokens"] == 10


async def test_max_tokens_zero() -> None:
    data = body(max_tokens=0, tools=[WEATHER], tool_choice={"type": "any"}, thinking={"type": "adaptive"})
    message = await ask(data)
    assert message["content"] == [] and message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 0
    events = await ask_stream(data)
    check_grammar(events)
    assert accumulate(events) == message


async def test_stop_sequences() -> None:
    data = body("[mock echo] alpha beta STOP gamma END delta", stop_sequences=["END", "STOP"])
    message = await ask(data)
    assert text_of(message) == "alpha beta "
    assert message["stop_reason"] == "stop_sequence" and message["stop_sequence"] == "STOP"
    assert message["usage"]["output_tokens"] == 3  # the stop sequence was generated too
    missing = await ask(body("[mock echo] alpha beta", stop_sequences=["zzz"]))
    assert missing["stop_reason"] == "end_turn" and missing["stop_sequence"] is None
    # The sequence that completes first wins, wherever it starts.
    overlap = await ask(body("[mock echo] abcdef", stop_sequences=["bcdef", "cd"]))
    assert text_of(overlap) == "ab" and overlap["stop_sequence"] == "cd"
    # A hit past max_tokens is never reached.
    late = await ask(body("[mock echo] one two three STOP", stop_sequences=["STOP"], max_tokens=2))
    assert text_of(late) == "one two" and late["stop_reason"] == "max_tokens"
    # A hit at the very start leaves no text block.
    first = await ask(body("[mock echo] STOP now", stop_sequences=["STOP"]))
    assert first["content"] == [] and first["stop_reason"] == "stop_sequence"


# --- tools -------------------------------------------------------------------------------------


def tool_uses(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in message["content"] if b["type"] == "tool_use"]


async def test_tool_choice_any_calls_first_custom_tool() -> None:
    message = await ask(body(tools=[WEB_SEARCH, WEATHER, CLOCK], tool_choice={"type": "any"}))
    assert [b["type"] for b in message["content"]] == ["text", "tool_use"]
    (use,) = tool_uses(message)
    assert use["name"] == "get_weather" and use["id"].startswith("toolu_01")
    assert use["input"] == {"city": "sample", "unit": "celsius"}
    assert list(use) == ["type", "id", "name", "input"]
    assert message["stop_reason"] == "tool_use" and message["stop_sequence"] is None
    words = len(message["content"][0]["text"].split())
    assert message["usage"]["output_tokens"] == words + -(-len(json.dumps(use["input"])) // 4)
    assert (await ask(body(tools=[WEB_SEARCH, WEATHER], tool_choice={"type": "any"}))) == (
        await ask(body(tools=[WEB_SEARCH, WEATHER], tool_choice={"type": "any"}))
    )


async def test_tool_choice_tool_uses_that_tool_with_all_properties_when_none_required() -> None:
    message = await ask(body(tools=[WEATHER, CLOCK], tool_choice={"type": "tool", "name": "get_time"}))
    (use,) = tool_uses(message)
    assert use["name"] == "get_time"
    assert use["input"] == {"zone": "sample", "precise": True, "offset": 1.5, "tags": [], "extra": {}}


async def test_tool_choice_auto_calls_a_mentioned_tool_only() -> None:
    mentioned = await ask(body("Please get_time for me", tools=[WEATHER, CLOCK]))
    assert [u["name"] for u in tool_uses(mentioned)] == ["get_time"]
    auto = await ask(body("Please get_time for me", tools=[WEATHER, CLOCK], tool_choice={"type": "auto"}))
    assert [u["name"] for u in tool_uses(auto)] == ["get_time"]
    plain = await ask(body("What is the time?", tools=[WEATHER, CLOCK]))
    assert tool_uses(plain) == [] and plain["stop_reason"] == "end_turn"
    # A longer word that contains the name is not a mention.
    assert tool_uses(await ask(body("get_timezone", tools=[CLOCK]))) == []


def _turns(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    """A first turn that mentions get_time, the mock's tool call, then ``extra``."""
    return [
        {"role": "user", "content": "Please get_time for me"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_01a", "name": "get_time", "input": {}}],
        },
        *extra,
    ]


RESULT_NAMING_TOOLS = {
    "role": "user",
    "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01a", "content": "12:00, ask get_weather next"},
        {"type": "text", "text": "<system-reminder>Tools: get_time, get_weather.</system-reminder>"},
    ],
}


async def test_tool_results_end_the_loop_although_tools_are_named() -> None:
    data = body(tools=[WEATHER, CLOCK])
    data["messages"] = _turns(RESULT_NAMING_TOOLS)
    message = await ask(data)
    assert tool_uses(message) == [] and message["stop_reason"] == "end_turn"
    assert [b["type"] for b in message["content"]] == ["text"]
    events = await ask_stream(data)
    starts = [e.data["content_block"]["type"] for e in events if e.name == "content_block_start"]
    assert starts == ["text"]
    assert [e.data["delta"]["stop_reason"] for e in events if e.name == "message_delta"] == ["end_turn"]


async def test_tool_results_still_honour_tool_choice_and_the_directive() -> None:
    data = body(tools=[WEATHER, CLOCK], tool_choice={"type": "any"})
    data["messages"] = _turns(RESULT_NAMING_TOOLS)
    assert [u["name"] for u in tool_uses(await ask(data))] == ["get_weather"]
    data["tool_choice"] = {"type": "tool", "name": "get_time"}
    assert [u["name"] for u in tool_uses(await ask(data))] == ["get_time"]
    del data["tool_choice"]
    directed = dict(RESULT_NAMING_TOOLS)
    directed["content"] = [*RESULT_NAMING_TOOLS["content"], {"type": "text", "text": "[mock tool=get_time]"}]
    data["messages"] = _turns(directed)
    assert [u["name"] for u in tool_uses(await ask(data))] == ["get_time"]


async def test_mentions_call_tools_on_the_first_turn_only() -> None:
    later = body(tools=[WEATHER, CLOCK])
    later["messages"] = _turns(
        {"role": "user", "content": "[mock tool=get_time] done"},
        {"role": "assistant", "content": "It is noon."},
        {"role": "user", "content": "Now get_weather please"},
    )
    assert tool_uses(await ask(later)) == []
    # Several user messages before any assistant turn, or a prefill, are still the first turn.
    first = body(tools=[WEATHER, CLOCK])
    first["messages"] = [
        {"role": "user", "content": "context"},
        {"role": "user", "content": "get_weather in Oslo"},
        {"role": "assistant", "content": "Sure,"},
    ]
    assert [u["name"] for u in tool_uses(await ask(first))] == ["get_weather"]


async def test_tool_names_up_to_128_characters_are_mentioned() -> None:
    name = "mcp__" + "x" * 123
    tool = {"name": name, "input_schema": {"type": "object"}}
    assert [u["name"] for u in tool_uses(await ask(body(f"use {name}", tools=[tool])))] == [name]


async def test_tool_directive_and_tool_choice_none() -> None:
    directed = await ask(body("[mock tool=get_time] hi", tools=[WEATHER, CLOCK]))
    assert [u["name"] for u in tool_uses(directed)] == ["get_time"]
    with_any = await ask(body("[mock tool=get_time] hi", tools=[WEATHER, CLOCK], tool_choice={"type": "any"}))
    assert [u["name"] for u in tool_uses(with_any)] == ["get_time"]
    never = await ask(
        body("[mock tool=get_time] get_weather", tools=[WEATHER, CLOCK], tool_choice={"type": "none"})
    )
    assert tool_uses(never) == [] and never["stop_reason"] == "end_turn"
    # Unknown tools, server tools and tool-less requests get plain text.
    assert tool_uses(await ask(body("[mock tool=nope] hi", tools=[WEATHER]))) == []
    assert tool_uses(await ask(body(tools=[WEB_SEARCH], tool_choice={"type": "any"}))) == []
    assert tool_uses(await ask(body("[mock tool=get_time] hi"))) == []


async def test_tool_call_that_does_not_fit_is_dropped() -> None:
    message = await ask(body(tools=[WEATHER], tool_choice={"type": "any"}, max_tokens=6))
    assert tool_uses(message) == [] and message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 6


async def test_tool_schema_samples() -> None:
    schema = {
        "type": "object",
        "properties": {
            "mode": {"enum": ["fast", "slow"]},
            "kind": {"const": "x"},
            "maybe": {"type": ["null", "integer"]},
            "either": {"anyOf": [{"type": "boolean"}, {"type": "string"}]},
            "nested": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                "required": ["a"],
            },
            "unknown": {},
        },
        "required": ["mode", "kind", "maybe", "either", "nested", "unknown", "undeclared"],
    }
    tool = {"name": "odd", "input_schema": schema}
    (use,) = tool_uses(await ask(body(tools=[tool], tool_choice={"type": "any"})))
    assert use["input"] == {
        "mode": "fast",
        "kind": "x",
        "maybe": 1,
        "either": True,
        "nested": {"a": 1},
        "unknown": "sample",
        "undeclared": "sample",
    }


# --- thinking, images, shapes ------------------------------------------------------------------


async def test_thinking_enabled_and_adaptive() -> None:
    for thinking in ({"type": "enabled", "budget_tokens": 2048}, {"type": "adaptive"}):
        message = await ask(body(thinking=thinking))
        assert [b["type"] for b in message["content"]] == ["thinking", "text"]
        block = message["content"][0]
        assert list(block) == ["type", "thinking", "signature"]
        assert len(block["thinking"].split()) == 16 and len(block["signature"]) > 40
        assert message["usage"]["output_tokens"] == 16 + 24
    for thinking in ({"type": "disabled"}, {"type": "between_tools"}):
        assert [b["type"] for b in (await ask(body(thinking=thinking)))["content"]] == ["text"]


async def test_thinking_omitted_and_budget() -> None:
    message = await ask(body(thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"}))
    block = message["content"][0]
    assert block["type"] == "thinking" and block["thinking"] == "" and block["signature"]
    assert message["usage"]["output_tokens"] == 16 + 24  # omitted thinking is still billed
    capped = await ask(body(thinking={"type": "enabled", "budget_tokens": 5}))
    assert len(capped["content"][0]["thinking"].split()) == 5


async def test_thinking_counts_against_max_tokens() -> None:
    short = await ask(body(thinking={"type": "adaptive"}, max_tokens=10))
    assert [b["type"] for b in short["content"]] == ["thinking"]
    assert len(short["content"][0]["thinking"].split()) == 10
    assert short["stop_reason"] == "max_tokens" and short["usage"]["output_tokens"] == 10
    some = await ask(body(thinking={"type": "adaptive"}, max_tokens=20))
    assert len(text_of(some).split()) == 4 and some["stop_reason"] == "max_tokens"


async def test_images_and_documents_are_accepted_and_counted() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    pdf = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    text = {"type": "text", "text": "Describe this"}
    plain = await ask(body([text]))
    with_image = await ask(body([image, text]))
    with_both = await ask(body([image, pdf, text]))
    assert with_image["usage"]["input_tokens"] == plain["usage"]["input_tokens"] + IMAGE_TOKENS
    assert with_both["usage"]["input_tokens"] > with_image["usage"]["input_tokens"]
    assert with_image["stop_reason"] == "end_turn" and text_of(with_image)


async def test_odd_but_valid_shapes() -> None:
    data = body(
        [
            {"type": "tool_result", "tool_use_id": "toolu_01x", "content": [{"type": "text", "text": "42"}]},
            {
                "type": "search_result",
                "source": "s",
                "title": "t",
                "content": [{"type": "text", "text": "x"}],
            },
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
            {"type": "future_block", "payload": {"a": 1}},
        ],
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    )
    data["messages"] = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "abc"},
                {"type": "tool_use", "id": "toolu_01x", "name": "calc", "input": {"q": 1}},
            ],
        },
        data["messages"][0],
    ]
    message = await ask(data)
    assert message["stop_reason"] == "end_turn" and message["usage"]["input_tokens"] > 5
    assert (await ask(body(system="Be brief.")))["stop_reason"] == "end_turn"
    assert text_of(await ask({"model": "mock-1", "max_tokens": 100, "messages": []}))
    assert (await ask({"model": "mock-1", "messages": "odd"}))["stop_reason"] == "end_turn"


async def test_prefill_is_continued() -> None:
    data = body("[mock words=4] hi")
    data["messages"].append({"role": "assistant", "content": "The answer is"})
    message = await ask(data)
    assert text_of(message).startswith(" ") and len(text_of(message).split()) == 4


# --- streaming ---------------------------------------------------------------------------------


STREAM_CASES = [
    body(),
    body("[mock words=50] hi", max_tokens=10),
    body(max_tokens=0),
    body("[mock words=0]"),
    body("[mock echo] a b STOP c", stop_sequences=["STOP"]),
    body(tools=[WEATHER, CLOCK], tool_choice={"type": "any"}),
    body(tools=[CLOCK], tool_choice={"type": "tool", "name": "get_time"}, thinking={"type": "adaptive"}),
    body(thinking={"type": "enabled", "budget_tokens": 2048, "display": "omitted"}),
    body(thinking={"type": "adaptive"}, max_tokens=10),
    body("[mock words_per_delta=1 words=5] x"),
]


@pytest.mark.parametrize("data", STREAM_CASES)
async def test_stream_follows_the_grammar_and_accumulates_to_the_message(data: dict[str, Any]) -> None:
    events = await ask_stream(data)
    check_grammar(events)
    message = await ask(data)
    assert accumulate(events) == message
    start = events[0].data["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["stop_sequence"] is None
    assert start["usage"]["input_tokens"] == message["usage"]["input_tokens"]
    assert start["usage"]["output_tokens"] == (0 if data["max_tokens"] == 0 else 1)
    names = [e.name for e in events]
    assert names.count("ping") == 1
    if message["content"]:
        assert names.index("ping") == names.index("content_block_start") + 1
    # Every event encodes to one SSE frame.
    for event in events:
        assert event.encode().startswith(f"event: {event.name}\ndata: ".encode())


async def test_stream_deltas() -> None:
    events = await ask_stream(
        body(tools=[WEATHER], tool_choice={"type": "any"}, thinking={"type": "adaptive"})
    )
    deltas = [e.data["delta"] for e in events if e.name == "content_block_delta"]
    kinds = [d["type"] for d in deltas]
    assert kinds[:6] == ["thinking_delta"] * 6  # 16 words, 3 a delta
    assert kinds[6] == "signature_delta" and kinds.count("signature_delta") == 1
    json_parts = [d["partial_json"] for d in deltas if d["type"] == "input_json_delta"]
    assert json_parts[0] == "" and len(json_parts) == 4
    starts = [e.data["content_block"] for e in events if e.name == "content_block_start"]
    assert starts[0] == {"type": "thinking", "thinking": "", "signature": ""}
    assert starts[1] == {"type": "text", "text": ""}
    assert starts[2]["type"] == "tool_use" and starts[2]["input"] == {}
    text_chunks = [d["text"] for d in deltas if d["type"] == "text_delta"]
    assert all(len(chunk.split()) <= 3 for chunk in text_chunks)
    omitted = await ask_stream(body(thinking={"type": "adaptive", "display": "omitted"}))
    assert "thinking_delta" not in [
        e.data["delta"]["type"] for e in omitted if e.name == "content_block_delta"
    ]


async def test_stream_error_directive() -> None:
    events = await ask_stream(body("[mock stream_error=overloaded_error after=2] hi"))
    names = [e.name for e in events]
    check_grammar(events)
    assert names[-1] == "error" and "message_stop" not in names and "message_delta" not in names
    assert names.count("content_block_delta") == 2
    assert events[-1].data == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    at_once = await ask_stream(body("[mock stream_error=api_error] hi"))
    assert "content_block_delta" not in [e.name for e in at_once] and at_once[-1].name == "error"
    late = await ask_stream(body("[mock stream_error=rate_limit_error after=1000] hi"))
    assert late[-1].data["error"]["type"] == "rate_limit_error" and "message_delta" not in [
        e.name for e in late
    ]
    with pytest.raises(Overloaded):
        await ask(body("[mock stream_error=overloaded_error after=2] hi"))


ERRORS: list[tuple[str, type[SidecarError], int]] = [
    ("rate_limit_error", RateLimited, 429),
    ("overloaded_error", Overloaded, 529),
    ("api_error", UpstreamError, 500),
    ("invalid_request_error", InvalidRequest, 400),
    ("authentication_error", SidecarError, 401),
    ("permission_error", PermissionDenied, 403),
    ("not_found_error", NotFound, 404),
    ("request_too_large", RequestTooLarge, 413),
    ("timeout_error", Timeout, 504),
    ("503", Overloaded, 503),
]


@pytest.mark.parametrize(("error", "cls", "status"), ERRORS)
async def test_error_directive(error: str, cls: type[SidecarError], status: int) -> None:
    for data, stream, endpoint in (
        (body(), False, "messages"),
        (body(), True, "messages"),
        (body(), False, "count_tokens"),
    ):
        data["messages"][0]["content"] = f"[mock error={error}] hi"
        with pytest.raises(cls) as info:
            await MockUpstream("m").send(call(data, stream=stream, endpoint=endpoint), TARGET)
        assert info.value.status == status
        if not error.isdigit():
            assert info.value.error_type == error
        if status == 429:
            assert ("retry-after", "1") in info.value.headers


# --- timing ------------------------------------------------------------------------------------


async def test_timing_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(mock_upstream, "_sleep", record)
    upstream = MockUpstream("m", MockConfig(ttft_ms=100, gap_ms=10, words_per_delta=4))
    await ask_stream(body("[mock words=12] hi"), upstream)
    assert waits == [0.1, 0.01, 0.01]
    waits.clear()
    await ask(body("[mock words=12] hi"), upstream)
    assert waits == [pytest.approx(0.12)]
    waits.clear()
    await ask_stream(body("[mock words=6 ttft_ms=200 gap_ms=50] hi"), upstream)
    assert waits == [0.2, 0.05]
    waits.clear()
    await ask_stream(body(), MockUpstream("m"))
    assert waits == []


async def test_cancel_during_ttft_ends_the_stream() -> None:
    upstream = MockUpstream("m", MockConfig(ttft_ms=10_000))
    answer = await upstream.send(call(body(), stream=True), TARGET)
    assert answer.events is not None
    events = answer.events
    seen: list[str] = []

    async def consume() -> None:
        async for event in events:
            seen.append(event.name)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    assert seen == ["message_start", "content_block_start", "ping"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    await events.aclose()


async def test_aclose_stops_the_stream() -> None:
    answer = await MockUpstream("m", MockConfig(ttft_ms=10_000)).send(call(body(), stream=True), TARGET)
    assert answer.events is not None
    iterator = aiter(answer.events)
    assert (await anext(iterator)).name == "message_start"
    await asyncio.wait_for(answer.events.aclose(), timeout=5)
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)


async def test_cancel_during_non_streamed_wait() -> None:
    upstream = MockUpstream("m", MockConfig(ttft_ms=10_000))
    task = asyncio.create_task(upstream.send(call(body()), TARGET))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)


# --- other endpoints and config ----------------------------------------------------------------


async def test_count_tokens_matches_usage() -> None:
    data = body(system="Be brief.", tools=[WEATHER])
    answer: Answer = await MockUpstream("m").send(call(data, endpoint="count_tokens"), TARGET)
    assert answer.message is not None and list(answer.message) == ["input_tokens"]
    assert answer.message["input_tokens"] == (await ask(data))["usage"]["input_tokens"]
    with pytest.raises(NoRoute):
        await MockUpstream("m").send(call(data, endpoint="batches"), TARGET)


async def test_list_models() -> None:
    models = await MockUpstream("m").list_models({})
    assert [m["id"] for m in models] == [
        "mock-1",
        "claude-sonnet-4-6",
        "claude-opus-4-8",
        "claude-haiku-4-5-20251001",
    ]
    assert models[0] == {
        "type": "model",
        "id": "mock-1",
        "display_name": "Mock 1",
        "created_at": "2025-01-01T00:00:00Z",
        "max_input_tokens": 200_000,
        "max_tokens": 64_000,
    }
    assert [m["display_name"] for m in models[1:]] == [
        "Claude Sonnet 4.6",
        "Claude Opus 4.8",
        "Claude Haiku 4.5",
    ]
    custom = MockUpstream("m", MockConfig(models=["a-model"]))
    assert [m["id"] for m in await custom.list_models({})] == ["a-model"]
    assert custom.provider == "mock" and custom.name == "m"


def test_config_validation() -> None:
    assert MockConfig(models=["x"]).models == ("x",)
    for bad in ({"words": -1}, {"words_per_delta": 0}, {"ttft_ms": -5}, {"models": "mock-1"}, {"words": 1.5}):
        with pytest.raises(ConfigError):
            MockConfig(**bad)


def test_split_helpers() -> None:
    for text in ("", "  lead and trail  ", "one", "a\nb  c\t"):
        assert "".join(split_words(text)) == text
    assert split_words("a b c") == ["a", " b", " c"]
    assert split_fragments('{"city": "Paris"}') == ['{"cit', 'y": "P', 'aris"}']
    assert split_fragments("{}") == ["{", "}"]


# --- the official SDK reads the mock's answers -------------------------------------------------


async def test_official_sdk_accumulates_the_stream_to_the_message() -> None:
    anthropic = pytest.importorskip("anthropic")
    httpx = pytest.importorskip("httpx2")  # the transport the SDK uses
    upstream = MockUpstream("m")

    async def handler(request: Any) -> Any:
        data = json.loads(request.content)
        answer = await upstream.send(call(data, stream=bool(data.get("stream"))), TARGET)
        if answer.events is None:
            return httpx.Response(200, json=answer.message)
        chunks = b"".join([event.encode() async for event in answer.events])
        return httpx.Response(200, content=chunks, headers={"content-type": "text/event-stream"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = anthropic.AsyncAnthropic(api_key="test", base_url="http://mock", http_client=http, max_retries=0)
    async with client:
        for data in STREAM_CASES[:-1]:
            kwargs = {k: v for k, v in data.items() if k != "stream"}
            created = await client.messages.create(**kwargs)
            async with client.messages.stream(**kwargs) as stream:
                final = await stream.get_final_message()
            assert final.model_dump() == created.model_dump()
            assert created.id == (await ask(data))["id"] and created.usage.output_tokens is not None
        broken = body("[mock stream_error=overloaded_error after=1] hi")
        with pytest.raises(anthropic.APIStatusError):
            async with client.messages.stream(**broken) as stream:
                await stream.get_final_message()
