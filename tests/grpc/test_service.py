"""The gRPC door over a real socket: same answers as HTTP, errors as statuses, cancellation."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sidecar.client import AsyncClient, Client, SidecarAPIError
from sidecar.core import encode_sse
from sidecar.core.sse import SSESplitter
from sidecar.grpc import convert
from sidecar.messages.v1 import messages_pb2_grpc as pb_grpc
from tests.fakes.anthropic_api import FakeAnthropic, Plan, text_stream
from tests.inprocess import ThreadedSidecar

WEATHER = {
    "name": "get_weather",
    "description": "Weather",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["city", "n"],
    },
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
REQUESTS = [
    {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "Hello"}]},
    {
        "model": "claude-opus-4-8",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather in Paris? get_weather"}]}
        ],
        "tools": [WEATHER],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u-1"},
    },
    {
        "model": "m",
        "max_tokens": 3000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "text", "text": "describe"},
                ],
            }
        ],
    },
    {
        "model": "m",
        "max_tokens": 50,
        "stop_sequences": ["STOP"],
        "messages": [{"role": "user", "content": "[mock echo] a b STOP c"}],
    },
    {"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "cut short"}]},
]


@pytest.fixture()
def client(mock_sidecar: ThreadedSidecar) -> Iterator[Client]:
    with Client(mock_sidecar.grpc_target, api_key="k") as c:
        yield c


def _sse_events(url: str, body: dict[str, object]) -> list[dict[str, object]]:
    r = httpx.post(url + "/v1/messages", json={**body, "stream": True}, headers={"x-api-key": "k"})
    splitter = SSESplitter()
    return [e.data for e in splitter.feed(r.content)]


@pytest.mark.parametrize("body", REQUESTS)
def test_both_doors_same_message(
    mock_sidecar: ThreadedSidecar, client: Client, body: dict[str, object]
) -> None:
    over_http = httpx.post(
        mock_sidecar.http_url + "/v1/messages", json=body, headers={"x-api-key": "k"}
    ).json()
    over_grpc = client.messages.create(**body)
    assert over_grpc == over_http


@pytest.mark.parametrize("body", REQUESTS)
def test_both_doors_same_stream(
    mock_sidecar: ThreadedSidecar, client: Client, body: dict[str, object]
) -> None:
    over_http = _sse_events(mock_sidecar.http_url, body)
    over_grpc = list(client.messages.stream(**body))
    assert over_grpc == over_http
    # The proto stream re-encoded as SSE parses back into the same events.
    reencoded = b"".join(encode_sse(str(e["type"]), e) for e in over_grpc)
    assert [e.data for e in SSESplitter().feed(reencoded)] == over_http


def test_count_tokens_and_models_match_http(mock_sidecar: ThreadedSidecar, client: Client) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "count me"}]}
    http_count = httpx.post(
        mock_sidecar.http_url + "/v1/messages/count_tokens", json=body, headers={"x-api-key": "k"}
    ).json()
    assert client.messages.count_tokens(**body) == http_count
    http_models = httpx.get(mock_sidecar.http_url + "/v1/models?limit=2", headers={"x-api-key": "k"}).json()
    assert client.models.list(limit=2) == http_models
    after = client.models.list(limit=2, after_id=http_models["last_id"])
    assert after["data"][0]["id"] not in {m["id"] for m in http_models["data"]}
    assert client.models.retrieve("claude-sonnet-4-6")["id"] == "claude-sonnet-4-6"


async def test_the_async_clients_models_match_http(mock_sidecar: ThreadedSidecar) -> None:
    http_models = httpx.get(mock_sidecar.http_url + "/v1/models?limit=2", headers={"x-api-key": "k"}).json()
    async with AsyncClient(mock_sidecar.grpc_target, api_key="k") as client:
        assert await client.models.list(limit=2) == http_models
        assert (await client.models.retrieve("claude-sonnet-4-6"))["id"] == "claude-sonnet-4-6"
        with pytest.raises(SidecarAPIError) as info:
            await client.models.retrieve("no-such-model")
        assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_same_request_reaches_upstream_identically(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    body = {**REQUESTS[1], "context_management": {"edits": []}, "temperature": 0.5}
    headers = {
        "x-api-key": "client-key",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "context-management-2025-06-27",
    }
    httpx.post(proxy_sidecar.http_url + "/v1/messages", json=body, headers=headers)
    with Client(proxy_sidecar.grpc_target, api_key="client-key") as c:
        c.messages.create(**body, betas=["context-management-2025-06-27"])
    via_http, via_grpc = upstream.requests
    assert via_http.json() == via_grpc.json() == body
    for key in ("x-api-key", "anthropic-version", "anthropic-beta"):
        assert via_http.headers[key] == via_grpc.headers[key]
    assert via_http.path == via_grpc.path == "/v1/messages"


def test_upstream_json_numbers_survive_grpc(proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic) -> None:
    answer = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "t",
                "input": {"n": 1, "f": 1.0, "big": 12345678901234567890},
            }
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
        "future_field": {"x": [1, None]},
    }
    raw = json.dumps(answer).encode()
    upstream.reset(lambda rec: Plan(body=raw))
    with Client(proxy_sidecar.grpc_target, api_key="k") as c:
        got = c.messages.create(**REQUESTS[0])
    assert got == answer
    assert json.dumps(got["content"][0]["input"]) == '{"n": 1, "f": 1.0, "big": 12345678901234567890}'


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (
            {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "model",
        ),
        ({"model": "m", "max_tokens": 5}, grpc.StatusCode.INVALID_ARGUMENT, "messages"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "max_tokens",
        ),
        ({"model": "m", "max_tokens": 5, "messages": []}, grpc.StatusCode.INVALID_ARGUMENT, "messages"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "robot", "content": "hi"}]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "messages.0.role",
        ),
        (
            {"model": "m", "max_tokens": "5", "messages": [{"role": "user", "content": "hi"}]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "max_tokens",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "[mock error=rate_limit_error] x"}],
            },
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "rate",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "[mock error=overloaded_error] x"}],
            },
            grpc.StatusCode.UNAVAILABLE,
            "verloaded",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "[mock error=authentication_error] x"}],
            },
            grpc.StatusCode.UNAUTHENTICATED,
            "",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "[mock error=permission_error] x"}],
            },
            grpc.StatusCode.PERMISSION_DENIED,
            "",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "[mock error=timeout_error] x"}],
            },
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "[mock error=api_error] x"}],
            },
            grpc.StatusCode.INTERNAL,
            "",
        ),
    ],
)
def test_errors_are_statuses_with_anthropic_trailers(
    mock_sidecar: ThreadedSidecar, client: Client, body: dict[str, object], code: grpc.StatusCode, words: str
) -> None:
    with pytest.raises(SidecarAPIError) as info:
        client.messages.create(**body)
    err = info.value
    assert err.code == code
    assert words in err.message
    assert err.request_id and err.request_id.startswith("req_")
    # The same request over HTTP gets the same Anthropic error type and message.
    r = httpx.post(mock_sidecar.http_url + "/v1/messages", json=body, headers={"x-api-key": "k"})
    assert 400 <= r.status_code < 600
    assert (r.json()["error"]["type"], r.json()["error"]["message"]) == (err.type, err.message)


@pytest.mark.parametrize("text", ["{not json", "[" * 5000 + "]" * 5000])
def test_invalid_json_text_in_proto_names_the_field(mock_sidecar: ThreadedSidecar, text: str) -> None:
    assistant = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}],
    }
    request = convert.request_to_proto(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}, assistant, {"role": "user", "content": "ok"}],
        }
    )
    # Corrupt the JSON text of the tool input.
    # Corrupt the JSON text of the tool input (nesting too deep was an unmapped RecursionError).
    request.messages[1].content_blocks.items[0].tool_use.input = text
    with grpc.insecure_channel(mock_sidecar.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.MessagesStub(channel).CreateMessage(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    trailers = dict(info.value.trailing_metadata())  # type: ignore[attr-defined]
    assert trailers["anthropic-error-type"] == "invalid_request_error"
    assert "messages.1.content.0.input" in trailers["anthropic-error-message"]


def test_mid_stream_error_is_an_event_then_the_status(client: Client) -> None:
    events: list[dict[str, object]] = []
    with pytest.raises(SidecarAPIError) as info:
        for event in client.messages.stream(
            model="m",
            max_tokens=100,
            messages=[{"role": "user", "content": "[mock stream_error=overloaded_error after=2] hi"}],
        ):
            events.append(event)
    assert events[-1]["type"] == "error"
    assert events[-1]["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert info.value.code == grpc.StatusCode.UNAVAILABLE and info.value.type == "overloaded_error"


def test_large_request_accepted(mock_sidecar: ThreadedSidecar, client: Client) -> None:
    # Over gRPC's 4 MB default: the door takes what HTTP takes.
    big = "word " * (1_200_000)
    message = client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": big}])
    assert message["usage"]["input_tokens"] > 1_000_000


def test_health_and_reflection(mock_sidecar: ThreadedSidecar) -> None:
    serving = health_pb2.HealthCheckResponse.SERVING
    api = ("sidecar.messages.v1.Messages", "sidecar.messages.v1.Batches")
    with grpc.insecure_channel(mock_sidecar.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == serving
        for name in (*api, "grpc.health.v1.Health"):
            assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == serving
        with pytest.raises(grpc.RpcError) as info:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        watch = health.Watch(health_pb2.HealthCheckRequest(service=api[0]))  # server streaming
        assert next(watch).status == serving
        watch.cancel()
        # An undecodable request to a service the sidecar does not own gets grpcio's own answer.
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        with pytest.raises(grpc.RpcError) as info:
            check(b"\xff\xff\xff")
        assert info.value.code() != grpc.StatusCode.OK

        stub = reflection_pb2_grpc.ServerReflectionStub(channel)  # bidirectional streaming
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=api[0]),
        ]
        listed, symbol = list(stub.ServerReflectionInfo(iter(requests)))
        names = {s.name for s in listed.list_services_response.service}
        assert names >= {*api, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
        assert symbol.file_descriptor_response.file_descriptor_proto


@pytest.mark.parametrize("stream", [False, True])
def test_deadline_cancels_upstream(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic, stream: bool
) -> None:
    upstream.reset(lambda rec: Plan(hang=True))
    with Client(proxy_sidecar.grpc_target, api_key="k", timeout=0.5) as c:
        with pytest.raises(SidecarAPIError) as info:
            if stream:
                list(c.messages.stream(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]))
            else:
                c.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert upstream.wait_for(lambda: bool(upstream.requests) and upstream.requests[-1].closed_early)


def test_cancel_mid_stream_closes_upstream(proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic) -> None:
    upstream.reset(lambda rec: Plan(chunks=text_stream("long " * 50), hang_after=3))
    with Client(proxy_sidecar.grpc_target, api_key="k") as c:
        events = c.messages.stream(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        first = next(events)
        assert first["type"] == "message_start"
        events.close()  # type: ignore[attr-defined]
    assert upstream.wait_for(lambda: upstream.requests[-1].closed_early)


async def test_async_client(mock_sidecar: ThreadedSidecar) -> None:
    from sidecar.client import AsyncClient

    body = REQUESTS[1]
    async with AsyncClient(mock_sidecar.grpc_target, api_key="k") as c:
        message = await c.messages.create(**body)
        events = [e async for e in c.messages.stream(**body)]
        count = await c.messages.count_tokens(
            **{k: body[k] for k in ("model", "messages", "system", "tools")}
        )
    assert events[0]["message"]["id"] == message["id"]
    assert message["usage"]["input_tokens"] == count["input_tokens"]


def test_unknown_model_over_grpc(fake_anthropic: FakeAnthropic, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import start_sidecar

    path = tmp_path / "c.yaml"
    path.write_text("upstreams:\n  m: {provider: mock}\nroutes:\n  - {match: 'claude-*', upstream: m}\n")
    sp = start_sidecar("--config", str(path))
    try:
        with Client(sp.grpc_target) as c, pytest.raises(SidecarAPIError) as info:
            c.messages.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        assert info.value.code == grpc.StatusCode.NOT_FOUND and "gpt-4o" in info.value.message
    finally:
        sp.stop()


def test_message_over_the_limit_is_resource_exhausted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import start_sidecar

    path = tmp_path / "c.yaml"
    path.write_text(
        "listeners: {max_body_bytes: 4096}\nupstreams:\n  m: {provider: mock}\nroutes:\n  - {match: '*', upstream: m}\n"
    )
    sp = start_sidecar("--config", str(path))
    try:
        with Client(sp.grpc_target) as c, pytest.raises(SidecarAPIError) as info:
            c.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x" * 5000}])
        # gRPC itself refuses the oversized message (before the service sees it).
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        sp.stop()


def test_dropped_upstream_stream_is_error_event_then_internal(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    upstream.reset(lambda rec: Plan(chunks=text_stream("a longer answer that will be cut"), reset_after=4))
    events: list[dict[str, object]] = []
    with Client(proxy_sidecar.grpc_target, api_key="k") as c, pytest.raises(SidecarAPIError) as info:
        for event in c.messages.stream(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]):
            events.append(event)
    assert [e["type"] for e in events[:2]] == ["message_start", "content_block_start"]
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == "api_error"  # type: ignore[index]
    assert info.value.code == grpc.StatusCode.INTERNAL and info.value.type == "api_error"


def test_answers_name_their_request_ids(proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic) -> None:
    """A unary answer's ids travel in its trailing metadata (with the status, no extra core
    operation); a stream's in its initial metadata, before the first event."""
    upstream.reset()
    request = convert.request_to_proto(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )
    with grpc.insecure_channel(proxy_sidecar.grpc_target) as channel:
        stub = pb_grpc.MessagesStub(channel)
        _, call = stub.CreateMessage.with_call(request, metadata=(("x-api-key", "k"),))
        trailing = dict(call.trailing_metadata())
        assert trailing["request-id"] == "req_fake_upstream"
        assert trailing["sidecar-request-id"].startswith("req_")
        request.stream = True
        stream = stub.StreamMessage(request, metadata=(("x-api-key", "k"),))
        initial = dict(stream.initial_metadata())
        assert initial["request-id"] == "req_fake_upstream"
        assert initial["sidecar-request-id"].startswith("req_")
        assert [e.WhichOneof("event") for e in stream][-1] == "message_stop"


# Found by the grpc_fuzz reliability campaign.


@pytest.mark.parametrize(
    "method",
    ["CreateMessage", "StreamMessage", "CountTokens", "ListModels", "GetModel"],
)
def test_undecodable_protobuf_is_invalid_argument_with_trailers(
    mock_sidecar: ThreadedSidecar, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Field 1 (a string) declared 100 bytes long, 2 given: no message type decodes that.
    # grpcio itself answered UNKNOWN ("Unexpected DecodeError") and logged a traceback.
    with grpc.insecure_channel(mock_sidecar.grpc_target) as channel:
        path = f"/sidecar.messages.v1.Messages/{method}"
        if method == "StreamMessage":
            call = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as info:
                list(call(b"\x0a\x64ab", timeout=10))
        else:
            unary = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as info:
                unary(b"\x0a\x64ab", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    trailers = dict(info.value.trailing_metadata())  # type: ignore[attr-defined]
    assert trailers["anthropic-error-type"] == "invalid_request_error"
    assert "not a valid sidecar.messages.v1." in trailers["anthropic-error-message"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_json_text_nested_too_deep_is_invalid_argument(mock_sidecar: ThreadedSidecar) -> None:
    # msgspec raises RecursionError past ~1,000 levels: it was the sidecar's own INTERNAL
    # "Internal server error", with a traceback.
    request = convert.request_to_proto(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )
    request.context_management = "[" * 100_000 + "]" * 100_000
    with grpc.insecure_channel(mock_sidecar.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.MessagesStub(channel).CreateMessage(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    trailers = dict(info.value.trailing_metadata())  # type: ignore[attr-defined]
    assert trailers["anthropic-error-message"] == "context_management: invalid JSON text"


@pytest.mark.parametrize("model_id", ["modèle-☃", "a\r\nb", "m" * 100_000])
def test_an_error_quoting_any_input_keeps_its_status_and_trailers(
    mock_sidecar: ThreadedSidecar, model_id: str
) -> None:
    # The error message quotes the model id: non-ASCII or CR/LF in a trailer made gRPC end the
    # call INTERNAL "Invalid metadata", and 100 KB went over gRPC's 16 KB metadata limit.
    from sidecar.messages.v1 import messages_pb2 as pb

    with grpc.insecure_channel(mock_sidecar.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.MessagesStub(channel).GetModel(pb.GetModelRequest(model_id=model_id), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    trailers = dict(info.value.trailing_metadata())  # type: ignore[attr-defined]
    assert trailers["anthropic-error-type"] == "not_found_error"
    message = trailers["anthropic-error-message"]
    assert message.isascii() and message.isprintable() and len(message) <= 1024


def test_an_upstream_answer_nested_too_deep_is_an_upstream_error_not_ours(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    # Found after the grpc_fuzz campaign's deep-JSON finding, by probing the upstream side: JSON
    # nested past msgspec's recursion limit in an upstream's answer (200 or error) was the
    # sidecar's own "Internal server error", with tracebacks (answer, telemetry, error mapping).
    deep = b"[" * 5000 + b"]" * 5000
    message = (
        b'{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text",'
        b'"text":"x","citations":' + deep + b'}],"stop_reason":"end_turn","usage":{"input_tokens":1,'
        b'"output_tokens":1}}'
    )
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    upstream.reset(lambda r: Plan(status=200, body=message))
    with grpc.insecure_channel(proxy_sidecar.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.MessagesStub(channel).CreateMessage(
                convert.request_to_proto(body), metadata=(("x-api-key", "k"),), timeout=10
            )
    trailers = dict(info.value.trailing_metadata())  # type: ignore[attr-defined]
    assert trailers["anthropic-error-message"] == "the upstream's answer is not valid JSON"
    upstream.reset(lambda r: Plan(status=500, body=b'{"type":"error","error":' + deep + b"}"))
    r = httpx.post(proxy_sidecar.http_url + "/v1/messages", json=body, headers={"x-api-key": "k"})
    assert r.status_code == 500 and r.json()["error"]["message"].startswith("upstream answered HTTP 500")
    assert not [rec for rec in caplog.records if rec.levelname == "ERROR"]
