"""The official anthropic SDK, sync and async, against the sidecar as `make run` starts it (mock model)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import anthropic
import pytest

from tests.inprocess import ThreadedSidecar

USER = [{"role": "user", "content": "Hello there"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


@pytest.fixture()
def client(mock_sidecar: ThreadedSidecar) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock_sidecar.http_url, api_key="any-key", max_retries=0)


@pytest.fixture()
async def aclient(mock_sidecar: ThreadedSidecar) -> AsyncIterator[anthropic.AsyncAnthropic]:
    # Closed on this test's loop: an async client left to the garbage collector schedules its
    # close on whatever loop runs then (a later test's), which logs "exception never retrieved".
    async with anthropic.AsyncAnthropic(
        base_url=mock_sidecar.http_url, api_key="any-key", max_retries=0
    ) as client:
        yield client


def test_create_and_stream_agree(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="claude-sonnet-4-6", max_tokens=200, messages=USER)
    assert message.type == "message" and message.role == "assistant"
    assert message.stop_reason == "end_turn" and message.content[0].type == "text"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.model == "claude-sonnet-4-6"
    assert message._request_id and message._request_id.startswith("req_")
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=200, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.model_dump() == message.model_dump()
    assert text == message.content[0].text  # type: ignore[union-attr]


async def test_async_create_and_stream(aclient: anthropic.AsyncAnthropic) -> None:
    message = await aclient.messages.create(model="claude-haiku-4-5-20251001", max_tokens=50, messages=USER)
    async with aclient.messages.stream(
        model="claude-haiku-4-5-20251001", max_tokens=50, messages=USER
    ) as stream:
        chunks = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert final.model_dump() == message.model_dump()
    assert "".join(chunks) == message.content[0].text  # type: ignore[union-attr]


def test_max_tokens_and_stop_sequences(client: anthropic.Anthropic) -> None:
    cut = client.messages.create(model="m", max_tokens=3, messages=USER)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3
    stopped = client.messages.create(
        model="m",
        max_tokens=100,
        stop_sequences=["STOP"],
        messages=[{"role": "user", "content": "[mock echo] one two STOP three"}],
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "STOP"
    assert stopped.content[0].text == "one two "  # type: ignore[union-attr]


def test_tools_forced_and_streamed(client: anthropic.Anthropic) -> None:
    kwargs = {
        "model": "m",
        "max_tokens": 200,
        "messages": USER,
        "tools": [WEATHER],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    message = client.messages.create(**kwargs)  # type: ignore[arg-type]
    assert message.stop_reason == "tool_use"
    call = message.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "sample"}
    with client.messages.stream(**kwargs) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert final.model_dump() == message.model_dump()
    # tool_choice none never calls a tool.
    plain = client.messages.create(
        model="m", max_tokens=50, messages=USER, tools=[WEATHER], tool_choice={"type": "none"}
    )  # type: ignore[list-item]
    assert plain.stop_reason == "end_turn"


def test_tool_result_round_trip(client: anthropic.Anthropic) -> None:
    first = client.messages.create(
        model="m", max_tokens=200, messages=USER, tools=[WEATHER], tool_choice={"type": "any"}
    )  # type: ignore[list-item]
    call = first.content[-1]
    assert call.type == "tool_use"
    second = client.messages.create(
        model="m",
        max_tokens=200,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[
            *USER,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},  # type: ignore[misc]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn"


def test_images_and_thinking(client: anthropic.Anthropic) -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is in these?"},
    ]
    message = client.messages.create(
        model="m",
        max_tokens=4000,
        messages=[{"role": "user", "content": content}],
        thinking={"type": "enabled", "budget_tokens": 2000},  # type: ignore[typeddict-item]
    )
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].signature  # type: ignore[union-attr]
    assert message.usage.input_tokens > 1600  # the images were counted
    with client.messages.stream(
        model="m",
        max_tokens=4000,
        messages=[{"role": "user", "content": content}],
        thinking={"type": "enabled", "budget_tokens": 2000},  # type: ignore[typeddict-item]
    ) as stream:
        final = stream.get_final_message()
    assert final.model_dump() == message.model_dump()


def test_count_tokens_and_models(client: anthropic.Anthropic) -> None:
    count = client.messages.count_tokens(model="m", messages=USER)
    created = client.messages.create(model="m", max_tokens=5, messages=USER)
    assert count.input_tokens == created.usage.input_tokens
    page = client.models.list(limit=1)
    assert len(page.data) == 1 and page.has_more
    ids = [m.id for m in page]
    assert "claude-sonnet-4-6" in ids and len(ids) == len(set(ids)) > 1
    assert client.models.retrieve(ids[1]).id == ids[1]


@pytest.mark.parametrize(
    ("directive", "exc", "status"),
    [
        ("invalid_request_error", anthropic.BadRequestError, 400),
        ("authentication_error", anthropic.AuthenticationError, 401),
        ("not_found_error", anthropic.NotFoundError, 404),
        ("request_too_large", anthropic.RequestTooLargeError, 413),
        ("rate_limit_error", anthropic.RateLimitError, 429),
        ("overloaded_error", anthropic.OverloadedError, 529),
    ],
)
def test_error_statuses_raise_sdk_classes(
    client: anthropic.Anthropic, directive: str, exc: type[Exception], status: int
) -> None:
    with pytest.raises(exc) as info:
        client.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": f"[mock error={directive}] hi"}]
        )
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert info.value.body["error"]["type"] == directive  # type: ignore[attr-defined]


async def test_mid_stream_error_surfaces(aclient: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        async with aclient.messages.stream(
            model="m",
            max_tokens=100,
            messages=[{"role": "user", "content": "[mock stream_error=overloaded_error after=2] hi"}],
        ) as stream:
            async for _ in stream.text_stream:
                pass
    assert "Overloaded" in str(info.value) or "overloaded" in str(info.value)


def test_legacy_sdk_headers_x_api_key_and_old_version(mock_sidecar: ThreadedSidecar) -> None:
    import httpx

    r = httpx.post(
        mock_sidecar.http_url + "/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": USER},
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 200 and r.json()["type"] == "message"
    assert r.headers["request-id"] == r.headers["sidecar-request-id"]


def test_other_endpoints_without_an_anthropic_upstream_are_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.batches.retrieve("msgbatch_1")
    assert "does not serve /v1/messages/batches/msgbatch_1" in info.value.body["error"]["message"]  # type: ignore[index]


# --- an agent loop as coding agents run it -------------------------------------------------------

AGENT_TOOLS = [
    {
        "name": name,
        "description": f"The {name} tool.",
        "input_schema": {"type": "object", "properties": {"arg": {"type": "string"}}, "required": ["arg"]},
    }
    for name in ("Read", "Bash", "Edit", "mcp__github__search_issues")
]
REMINDER = "<system-reminder>Use Read to read files and Bash to run commands.</system-reminder>"


@pytest.mark.parametrize("stream", [False, True])
def test_an_agent_loop_that_names_its_tools_every_turn_ends(
    client: anthropic.Anthropic, stream: bool
) -> None:
    """Claude Code's shape: every user turn carries a reminder naming its tools, and tool results
    echo them. The mock calls a tool on the first turn and answers the results with end_turn."""
    messages: list[dict[str, object]] = [
        {"role": "user", "content": [{"type": "text", "text": REMINDER}, {"type": "text", "text": "say hi"}]}
    ]
    requests = 0
    for _ in range(10):
        kwargs: dict[str, object] = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 500,
            "system": "You are a coding agent with the tools Read, Bash and Edit.",
            "tools": AGENT_TOOLS,
            "messages": messages,
        }
        requests += 1
        if stream:
            with client.messages.stream(**kwargs) as s:  # type: ignore[arg-type]
                message = s.get_final_message()
        else:
            message = client.messages.create(**kwargs)  # type: ignore[arg-type]
        messages.append(
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]}
        )
        if message.stop_reason != "tool_use":
            break
        results: list[dict[str, object]] = [
            {"type": "tool_result", "tool_use_id": b.id, "content": f"ran {b.name}; Bash and Read are ready"}
            for b in message.content
            if b.type == "tool_use"
        ]
        messages.append({"role": "user", "content": [*results, {"type": "text", "text": REMINDER}]})
    assert message.stop_reason == "end_turn" and message.content[-1].type == "text"
    assert requests == 2
    assert messages[1]["content"][-1]["name"] == "Read"  # type: ignore[index]
