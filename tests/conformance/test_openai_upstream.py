"""The OpenAI-compatible upstream end to end: what reaches the strict fake, what the client gets,
errors, model maps, count_tokens, pings, cancellation, the config-free form and an SDK agent loop
over both doors."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import grpc
import httpx
import pytest

from sidecar.client import Client, SidecarAPIError
from sidecar.core.grammar import check_sse
from sidecar.core.sse import SSESplitter
from sidecar.translate.openai_request import DROPPED, REJECTED
from tests.conformance.conftest import DEFAULT_MODEL, start_openai_sidecar
from tests.conftest import Sidecar, start_sidecar
from tests.fakes.openai_api import FakeOpenAI, Plan, chunk, text_chunks, usage_chunk
from tests.inprocess import ThreadedSidecar

PNG = base64.b64encode(
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (800).to_bytes(4, "big") + (600).to_bytes(4, "big")
).decode()
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _post(sp: Sidecar, body: dict[str, Any], path: str = "/v1/messages") -> httpx.Response:
    return httpx.post(sp.http_url + path, json=body, headers={"x-api-key": "client"})


def test_request_translation_reaches_the_upstream(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    body = {
        "model": "claude-3-opus-latest",
        "max_tokens": 512,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in Paris and Oslo?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "Doc."},
                        "title": "T",
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Oslo"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Here you go."},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": "unknown city",
                        "is_error": True,
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [
                            {"type": "text", "text": "18C"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                            },
                        ],
                    },
                ],
            },
        ],
        "tools": [WEATHER],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "metadata": {"user_id": "user-7"},
        "thinking": {"type": "enabled", "budget_tokens": 4096},
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "service_tier": "auto",
    }
    r = _post(openai_sidecar, body)
    assert r.status_code == 200, r.text
    sent = openai_upstream.requests[-1].json()
    assert sent["model"] == "grok-2-latest"  # the Grok2API map
    data_url = f"data:image/png;base64,{PNG}"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris and Oslo?"},
                {"type": "image_url", "image_url": {"url": data_url}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "text", "text": "T\n\nDoc."},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: unknown city"},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": data_url}},
                {"type": "text", "text": "Here you go."},
            ],
        },
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    assert sent["max_tokens"] == 512 and sent["stop"] == ["END"]
    assert (sent["temperature"], sent["top_p"], sent["user"]) == (0.5, 0.9, "user-7")
    assert "top_k" not in sent and "service_tier" not in sent  # dropped (README table)
    assert sent["reasoning_effort"] == "medium"
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": True},
    }
    assert "stream" not in sent
    answer = r.json()
    assert answer["model"] == "claude-3-opus-latest" and answer["id"].startswith("msg_")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_every_tool_choice(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI, choice: dict[str, Any], expected: object
) -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [WEATHER],
        "tool_choice": choice,
    }
    assert _post(openai_sidecar, body).status_code == 200
    sent = openai_upstream.requests[-1].json()
    assert sent["tool_choice"] == expected and "parallel_tool_calls" not in sent


def test_a_file_the_sidecar_does_not_hold_is_404(openai_sidecar: ThreadedSidecar) -> None:
    # Files the sidecar stores are sent inline (tests/files); any other id cannot be read here.
    image = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [image]}]}
    r = _post(openai_sidecar, body)
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert error["type"] == "not_found_error"
    assert error["message"] == "messages.0.content.0.source.file_id: File not found: file_1"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools.0.type"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {
                                    "type": "base64",
                                    "media_type": "application/pdf",
                                    "data": "JVBERi0=",
                                },
                            },
                            {"type": "text", "text": "summarise"},
                        ],
                    }
                ]
            },
            "messages.0.content.0",
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "{"}]},
            "messages.1",
        ),
        ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "mcp_servers"),
        ({"brand_new_field": 1}, "brand_new_field"),
        ({"max_tokens": 0}, "max_tokens"),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}],
                    },
                    {"role": "user", "content": "no result"},
                ],
                "tools": [WEATHER],
            },
            "messages.2.content",
        ),
    ],
)
def test_unexpressible_requests_are_400_naming_the_field(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI, patch: dict[str, Any], field: str
) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], **patch}
    r = _post(openai_sidecar, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(field + ":"), error["message"]
    assert openai_upstream.requests == []
    with Client(openai_sidecar.grpc_target) as c, pytest.raises(SidecarAPIError) as info:
        c.messages.create(**body)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and info.value.message == error["message"]


@pytest.mark.parametrize(
    ("status", "etype", "client_status"),
    [
        (400, "invalid_request_error", 400),
        (401, "authentication_error", 401),
        (403, "permission_error", 403),
        (404, "not_found_error", 404),
        (413, "request_too_large", 413),
        (422, "invalid_request_error", 400),
        (429, "rate_limit_error", 429),
        (500, "api_error", 500),
        (502, "api_error", 500),
        (503, "overloaded_error", 529),
        (504, "timeout_error", 504),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_http_errors_map_to_anthropic_errors(
    openai_sidecar: ThreadedSidecar,
    openai_upstream: FakeOpenAI,
    status: int,
    etype: str,
    client_status: int,
    stream: bool,
) -> None:
    error = {"message": f"upstream says {status}", "type": "whatever", "param": None, "code": None}
    openai_upstream.reset(lambda rec: Plan(status=status, error=error, headers={"retry-after": "7"}))
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    r = _post(openai_sidecar, body)
    assert r.status_code == client_status
    assert r.json()["error"] == {"type": etype, "message": f"upstream says {status}"}
    assert r.json()["request_id"] == r.headers["request-id"]
    assert r.headers["retry-after"] == "7"


def test_rate_limit_over_sdk_and_grpc(openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.reset(
        lambda rec: Plan(
            status=429,
            error={"message": "slow down", "type": "rate_limit_exceeded"},
            headers={"retry-after": "3"},
        )
    )
    client = anthropic.Anthropic(base_url=openai_sidecar.http_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["retry-after"] == "3"
    with Client(openai_sidecar.grpc_target) as c, pytest.raises(SidecarAPIError) as ginfo:
        c.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert ginfo.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and ginfo.value.type == "rate_limit_error"


def test_non_json_error_body(openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.reset(lambda rec: Plan(status=502, error=b"<html>Bad Gateway</html>"))
    r = _post(
        openai_sidecar, {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert r.status_code == 500
    assert r.json()["error"] == {
        "type": "api_error",
        "message": "upstream answered HTTP 502: <html>Bad Gateway</html>",
    }


def test_invalid_tool_arguments_are_an_upstream_error(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    bad = {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{not json"},
    }
    completion = {
        "id": "x",
        "object": "chat.completion",
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [bad]},
                "finish_reason": "tool_calls",
            }
        ],
    }
    openai_upstream.reset(lambda rec: Plan(completion=completion))
    r = _post(
        openai_sidecar, {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert r.status_code == 502 and r.json()["error"]["type"] == "api_error"
    assert "not a JSON object" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("requested", "upstream_model"),
    [
        ("claude-3-5-sonnet-20241022", "grok-2-latest"),
        ("claude-3-haiku-20240307", "grok-2-1212"),
        ("claude-2.1", "grok-2"),
        ("claude-2.0", "grok-2"),
        ("grok-vision", "grok-vision"),
        ("claude-sonnet-4-6", DEFAULT_MODEL),
    ],
)
def test_model_map_and_the_reported_model(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI, requested: str, upstream_model: str
) -> None:
    body = {"model": requested, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    message = _post(openai_sidecar, body).json()
    assert openai_upstream.requests[-1].json()["model"] == upstream_model
    assert message["model"] == requested  # the name the client asked for
    r = httpx.post(
        openai_sidecar.http_url + "/v1/messages", json={**body, "stream": True}, headers={"x-api-key": "k"}
    )
    start = SSESplitter().feed(r.content)[0].data
    assert start["message"]["model"] == requested


def test_count_tokens_is_a_local_estimate(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    body = {
        "model": "m",
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "How many tokens is this sentence, roughly?"}],
        "tools": [WEATHER],
    }
    count = _post(openai_sidecar, body, "/v1/messages/count_tokens").json()
    with Client(openai_sidecar.grpc_target) as c:
        assert c.messages.count_tokens(**body) == count
    assert 30 < count["input_tokens"] < 120
    assert openai_upstream.requests == []
    # message_start carries the same estimate.
    r = httpx.post(
        openai_sidecar.http_url + "/v1/messages",
        json={**body, "max_tokens": 5, "stream": True},
        headers={"x-api-key": "k"},
    )
    start = SSESplitter().feed(r.content)[0].data
    assert start["message"]["usage"]["input_tokens"] == count["input_tokens"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "x"}]}, "mcp_servers"),
        ({"thread": {"type": "create"}}, "thread"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
        ({"tools": [{**WEATHER, "name": "mcp__server__" + "t" * 60}]}, "tools.0.name"),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure,"}]},
            "messages.1",
        ),
    ],
)
def test_count_tokens_refuses_what_messages_refuses(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI, extra: dict[str, Any], field: str
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    refused = _post(openai_sidecar, {**body, "max_tokens": 5})
    counted = _post(openai_sidecar, body, "/v1/messages/count_tokens")
    assert refused.status_code == counted.status_code == 400
    assert refused.json()["error"] == counted.json()["error"]
    assert counted.json()["error"]["message"].startswith(field + ":")
    assert openai_upstream.requests == []


def test_pings_while_the_upstream_is_silent(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.reset(lambda rec: Plan(chunks=text_chunks("late answer"), silence={0: 1.0, 2: 1.0}))
    r = httpx.post(
        openai_sidecar.http_url + "/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"x-api-key": "k"},
    )
    assert check_sse(r.content) == []
    names = [e.name for e in SSESplitter().feed(r.content)]
    assert names.count("ping") >= 2  # silent before message_start and mid-answer (interval 0.4 s)
    assert names[0] == "ping" and names[-1] == "message_stop"
    assert "message_start" in names[: names.index("content_block_start")]


def test_client_disconnect_closes_the_upstream(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.reset(lambda rec: Plan(chunks=text_chunks("a long answer " * 20), hang_after=3))
    with httpx.stream(
        "POST",
        openai_sidecar.http_url + "/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"x-api-key": "k"},
    ) as r:
        for line in r.iter_lines():
            if "text_delta" in line:
                break
    assert openai_upstream.wait_for(lambda: openai_upstream.requests[-1].closed_early)


@pytest.mark.parametrize("stream", [False, True])
def test_grpc_deadline_closes_the_upstream(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI, stream: bool
) -> None:
    openai_upstream.reset(lambda rec: Plan(hang=True))
    with Client(openai_sidecar.grpc_target, timeout=0.5) as c, pytest.raises(SidecarAPIError) as info:
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        list(c.messages.stream(**body)) if stream else c.messages.create(**body)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert openai_upstream.wait_for(
        lambda: bool(openai_upstream.requests) and openai_upstream.requests[-1].closed_early
    )


@pytest.fixture(scope="module")
def options_sidecar(
    fake_openai: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedSidecar]:
    sp = start_openai_sidecar(
        tmp_path_factory.mktemp("openai-options") / "s.yaml",
        fake_openai.base_url,
        max_tokens_field="max_completion_tokens",
        send_top_k="true",
        send_stream_options="false",
        system_role="developer",
        response_model="upstream",
        extra_headers="{OpenAI-Organization: org-1}",
    )
    yield sp
    sp.stop()


def test_per_upstream_options(options_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.max_tokens_field = "max_completion_tokens"
    openai_upstream.accept_top_k = True
    body = {
        "model": "m",
        "max_tokens": 7,
        "system": "S",
        "top_k": 5,
        "messages": [{"role": "user", "content": "hi"}],
    }
    message = _post(options_sidecar, body).json()
    assert message["model"] == "fake-model"  # response_model: upstream
    rec = openai_upstream.requests[-1]
    sent = rec.json()
    assert sent["max_completion_tokens"] == 7 and "max_tokens" not in sent
    assert sent["top_k"] == 5 and sent["messages"][0] == {"role": "developer", "content": "S"}
    assert rec.headers["OpenAI-Organization"] == "org-1"
    r = httpx.post(
        options_sidecar.http_url + "/v1/messages", json={**body, "stream": True}, headers={"x-api-key": "k"}
    )
    assert "stream_options" not in openai_upstream.requests[-1].json()
    events = [e.data for e in SSESplitter().feed(r.content)]
    assert events[0]["message"]["model"] == "fake-model"
    assert events[-2]["usage"]["output_tokens"] > 0  # no usage chunk: the local estimate


def test_config_free_form(fake_openai: FakeOpenAI, openai_upstream: FakeOpenAI) -> None:
    sp = start_sidecar(
        "--upstream",
        fake_openai.base_url,
        "--provider",
        "openai",
        "--upstream-model",
        "llama-3",
        env={"SIDECAR_UPSTREAM_KEY": ""},
    )
    try:
        client = anthropic.Anthropic(base_url=sp.http_url, api_key="client-key", max_retries=0)
        message = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
        rec = openai_upstream.requests[-1]
        assert rec.json()["model"] == "llama-3" and message.model == "claude-sonnet-4-6"
        assert rec.headers["Authorization"] == "Bearer client-key"  # the client's own key
        assert message.content[0].text == "Hello from the fake OpenAI upstream."  # type: ignore[union-attr]
    finally:
        sp.stop()


# --- an SDK agent loop ----------------------------------------------------------------------------


def _agent_planner(rec: Any) -> Plan:
    """Call get_weather for each city in the first user text; once the results are in, answer."""
    messages = rec.json()["messages"]
    if messages[-1]["role"] == "tool":
        results = [m["content"] for m in messages if m["role"] == "tool"]
        return Plan(chunks=text_chunks("Summary: " + "; ".join(results), prompt=60))
    turn = len([m for m in messages if m["role"] == "assistant"])
    chunks: list[Any] = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Looking up."})]
    for i, city in enumerate(["Paris", "Oslo"]):
        call_id = f"call_{turn}_{i}"
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                }
            )
        )
        for piece in ('{"city"', f': "{city}"', "}"):
            chunks.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    chunks += [chunk({}, "tool_calls"), usage_chunk(50, 30), "[DONE]"]
    return Plan(chunks=chunks)


def _run_tool(name: str, tool_input: dict[str, Any]) -> str:
    assert name == "get_weather"
    return f"{tool_input['city']}: 18C"


@pytest.mark.parametrize("stream", [False, True])
def test_sdk_agent_loop_over_http(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI, stream: bool
) -> None:
    openai_upstream.reset(_agent_planner)
    client = anthropic.Anthropic(base_url=openai_sidecar.http_url, api_key="k", max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and Oslo?"}]
    for _ in range(4):
        kwargs: dict[str, Any] = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 200,
            "tools": [WEATHER],
            "messages": messages,
        }
        if stream:
            with client.messages.stream(**kwargs) as s:
                message = s.get_final_message()
        else:
            message = client.messages.create(**kwargs)
        messages.append(
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]}
        )
        if message.stop_reason != "tool_use":
            break
        results = [
            {"type": "tool_result", "tool_use_id": b.id, "content": _run_tool(b.name, b.input)}  # type: ignore[arg-type]
            for b in message.content
            if b.type == "tool_use"
        ]
        assert len(results) == 2
        messages.append({"role": "user", "content": results})
    assert message.stop_reason == "end_turn"
    assert message.content[0].text == "Summary: Paris: 18C; Oslo: 18C"  # type: ignore[union-attr]
    assert len(openai_upstream.requests) == 2
    last = openai_upstream.requests[-1].json()["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in last[2:]] == ["call_0_0", "call_0_1"]


@pytest.mark.parametrize("stream", [False, True])
def test_sdk_agent_loop_over_grpc(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI, stream: bool
) -> None:
    from anthropic.lib.streaming._messages import accumulate_event

    openai_upstream.reset(_agent_planner)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and Oslo?"}]
    with Client(openai_sidecar.grpc_target, api_key="k") as client:
        for _ in range(4):
            kwargs: dict[str, Any] = {
                "model": "claude-sonnet-4-6",
                "max_tokens": 200,
                "tools": [WEATHER],
                "messages": messages,
            }
            if stream:
                snapshot: Any = None
                bufs: dict[int, bytes] = {}
                for event in client.messages.stream(**kwargs):
                    snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)  # type: ignore[arg-type]
                message = json.loads(snapshot.to_json())
            else:
                message = client.messages.create(**kwargs)
            messages.append({"role": "assistant", "content": message["content"]})
            if message["stop_reason"] != "tool_use":
                break
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": b["id"],
                            "content": _run_tool(b["name"], b["input"]),
                        }
                        for b in message["content"]
                        if b["type"] == "tool_use"
                    ],
                }
            )
    assert message["content"][0]["text"] == "Summary: Paris: 18C; Oslo: 18C"
    assert len(openai_upstream.requests) == 2


def test_strict_fake_rejects_what_strict_servers_reject() -> None:
    from tests.fakes.openai_api import BadRequest, check_request

    good = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    check_request(good)
    bad_cases = [
        {**good, "top_k": 3},
        {**good, "stream_options": {"include_usage": True}},
        {**good, "tool_choice": "auto"},
        {**good, "messages": [{"role": "user", "content": "hi", "cache_control": {}}]},
        {**good, "messages": [{"role": "tool", "tool_call_id": "x", "content": "r"}]},
        {
            **good,
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                }
            ],
        },
        {**good, "stop": ["a", "b", "c", "d", "e"]},
        {**good, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
    ]
    for case in bad_cases:
        with pytest.raises(BadRequest):
            check_request(case)


def test_readme_documents_the_translation() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "## OpenAI-compatible upstreams" in readme
    for field in ("stop_sequences", "tool_choice", "top_k", "mcp_servers", "count_tokens"):
        assert f"`{field}`" in readme
    # What the translation drops or refuses by name is in the table.
    table = readme.split("## OpenAI-compatible upstreams")[1].split("\n## ")[0]
    named = ("citations", "transformations", "clear_at", "container_upload", "tool_reference")
    for field in (*DROPPED, *REJECTED, *named):
        assert f"`{field}`" in table, field


def test_a_cut_after_the_finish_reason_keeps_the_answer(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    chunks = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Done."}), chunk({}, "stop")]
    openai_upstream.reset(lambda rec: Plan(chunks=chunks, cut_after=len(chunks)))
    r = httpx.post(
        openai_sidecar.http_url + "/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"x-api-key": "k"},
    )
    assert check_sse(r.content) == []
    events = [e.data for e in SSESplitter().feed(r.content) if e.name != "ping"]
    assert [e["type"] for e in events][-2:] == ["message_delta", "message_stop"]
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


def test_models_lists_the_servers_models_and_the_mapped_names(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI
) -> None:
    client = anthropic.Anthropic(base_url=openai_sidecar.http_url, api_key="k", max_retries=0)
    ids = [m.id for m in client.models.list(limit=100)]
    assert ids[0] == "fake-model" and "claude-3-opus-latest" in ids
    assert openai_upstream.requests[-1].path == "/v1/models"
    assert openai_upstream.requests[-1].headers["Authorization"] == "Bearer sk-upstream-test"


@pytest.mark.parametrize("stream", [False, True])
def test_openai_ratelimit_headers_become_anthropic_ones(
    openai_sidecar: ThreadedSidecar, openai_upstream: FakeOpenAI, stream: bool
) -> None:
    limits = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "29000",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    openai_upstream.reset(lambda rec: Plan(headers=limits))
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    r = _post(openai_sidecar, body)
    assert r.status_code == 200
    assert r.headers["anthropic-ratelimit-requests-limit"] == "500"
    assert r.headers["anthropic-ratelimit-requests-remaining"] == "499"
    assert r.headers["anthropic-ratelimit-tokens-remaining"] == "29000"
    reset = datetime.fromisoformat(r.headers["anthropic-ratelimit-tokens-reset"].replace("Z", "+00:00"))
    assert 350 <= reset.timestamp() - time.time() <= 362
    assert "x-ratelimit-limit-requests" not in r.headers
