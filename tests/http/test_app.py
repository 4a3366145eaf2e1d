"""The HTTP app (sidecar/http/app.py) given bad input: always a 4xx Anthropic envelope that names the
problem; never a 500 or a hang."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.conftest import SidecarProcess, start_sidecar
from tests.fakes.anthropic_api import FakeAnthropic
from tests.inprocess import ThreadedSidecar

OK = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
H = {"x-api-key": "k", "content-type": "application/json"}


def _envelope(r: httpx.Response, status: int, etype: str, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == etype
    assert body["request_id"] == r.headers["request-id"]
    for word in words:
        assert word in body["error"]["message"], body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"model": "x", "max_tokens": 1, "messages": [', ("not valid JSON",)),
        (b"[1, 2]", ("JSON object",)),
        (b"", ("not valid JSON",)),
        # Found by the HTTP fuzz campaign (python -m reliability http_fuzz): both were 500s.
        (b'{"model": "x", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}", ("nested too deeply",)),
        (b'{"model": "\xed\xa0\x80", "max_tokens": 1, "messages": []}', ("not valid JSON", "utf-8")),
        # Nested past msgspec's recursion limit: it was the sidecar's own 500 with a traceback
        # (found by the grpc_fuzz campaign, in the gRPC door's JSON text fields first).
        (b"[" * 100_000 + b"]" * 100_000, ("not valid JSON", "nested too deeply")),
        (b'{"model": "m", "metadata": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001, ("nested too deeply",)),
    ],
)
def test_malformed_json(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic, body: bytes, words: tuple[str, ...]
) -> None:
    _envelope(
        httpx.post(proxy_sidecar.http_url + "/v1/messages", content=body, headers=H),
        400,
        "invalid_request_error",
        *words,
    )
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"model": None}, ("model", "Field required")),
        ({"messages": None}, ("messages", "Field required")),
        ({"max_tokens": None}, ("max_tokens", "Field required")),
        ({"model": 7}, ("model", "string")),
        ({"model": ""}, ("model",)),
        ({"max_tokens": "16"}, ("max_tokens", "integer")),
        ({"max_tokens": -1}, ("max_tokens", "greater than or equal to 0")),
        ({"stream": "yes"}, ("stream", "boolean")),
        ({"messages": []}, ("messages", "at least 1 item")),
        ({"messages": "hi"}, ("messages", "array")),
        ({"messages": [{"role": "robot", "content": "hi"}]}, ("messages.0.role",)),
        ({"messages": [{"role": ["user"], "content": "hi"}]}, ("messages.0.role",)),
        ({"messages": [{"role": "user", "content": ""}]}, ("messages.0", "non-empty content")),
        ({"messages": [{"role": "user"}]}, ("messages.0.content", "Field required")),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
            ("messages.0.content.0.text", "string"),
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="},
                            }
                        ],
                    }
                ]
            },
            ("messages.0.content.0.source.media_type",),
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}],
                    },
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": 7}]},
                ]
            },
            ("messages.2.content.0.tool_use_id", "string"),
        ),
        ({"tools": [{"name": "bad name!", "input_schema": {"type": "object"}}]}, ("tools.0.name", "pattern")),
        ({"tools": [{"name": "t"}]}, ("tools.0.input_schema", "Field required")),
        ({"tool_choice": {"type": "tool"}}, ("tool_choice.name",)),
        ({"thinking": {"type": "enabled", "budget_tokens": 10}}, ("thinking.budget_tokens", "1024")),
        ({"system": [{"type": "image"}]}, ("system.0.type",)),
        ({"stop_sequences": ["a", 1]}, ("stop_sequences.1",)),
        ({"metadata": {"user_id": 5}}, ("metadata.user_id",)),
    ],
)
def test_invalid_fields_name_the_path(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic, change: dict[str, object], words: tuple[str, ...]
) -> None:
    body = {k: v for k, v in {**OK, **change}.items() if v is not None}
    _envelope(
        httpx.post(proxy_sidecar.http_url + "/v1/messages", json=body, headers=H),
        400,
        "invalid_request_error",
        *words,
    )
    assert upstream.requests == []


def test_unknown_fields_and_block_types_pass_through(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    body = {
        **OK,
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "messages": [
            {
                "role": "user",
                "content": [{"type": "brand_new_block", "anything": [1, 2]}, {"type": "text", "text": "hi"}],
            }
        ],
        "tools": [{"type": "web_search_20260318", "name": "web_search", "max_uses": 2}],
    }
    r = httpx.post(proxy_sidecar.http_url + "/v1/messages", json=body, headers=H)
    assert r.status_code == 200
    assert upstream.requests[-1].json() == body


def test_sampling_fields_refused_under_new_version(
    proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic
) -> None:
    r = httpx.post(
        proxy_sidecar.http_url + "/v1/messages",
        json={**OK, "temperature": 0.5},
        headers={**H, "anthropic-version": "2026-10-21"},
    )
    _envelope(r, 400, "invalid_request_error", "temperature", "Extra inputs")
    r = httpx.post(
        proxy_sidecar.http_url + "/v1/messages",
        json={**OK, "temperature": 0.5},
        headers={**H, "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 200


def test_wrong_content_type(proxy_sidecar: ThreadedSidecar) -> None:
    r = httpx.post(
        proxy_sidecar.http_url + "/v1/messages",
        content=b"model=x",
        headers={"x-api-key": "k", "content-type": "application/x-www-form-urlencoded"},
    )
    _envelope(r, 400, "invalid_request_error", "content-type")


def test_wrong_method_and_unknown_path(proxy_sidecar: ThreadedSidecar) -> None:
    _envelope(
        httpx.get(proxy_sidecar.http_url + "/v1/messages", headers=H), 405, "invalid_request_error", "POST"
    )
    _envelope(httpx.get(proxy_sidecar.http_url + "/nope", headers=H), 404, "not_found_error", "/nope")


def test_count_tokens_validation(proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic) -> None:
    r = httpx.post(proxy_sidecar.http_url + "/v1/messages/count_tokens", json={"model": "m"}, headers=H)
    _envelope(r, 400, "invalid_request_error", "messages", "Field required")
    # count_tokens takes no max_tokens: a body without it is valid.
    r = httpx.post(
        proxy_sidecar.http_url + "/v1/messages/count_tokens",
        json={"model": "m", "messages": OK["messages"]},
        headers=H,
    )
    assert r.status_code == 200


def test_body_over_default_limit_is_413(proxy_sidecar: ThreadedSidecar, upstream: FakeAnthropic) -> None:
    big = "x" * (32 * 1024 * 1024 + 1)
    client = anthropic.Anthropic(base_url=proxy_sidecar.http_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.RequestTooLargeError) as info:
        client.messages.create(
            model="claude-sonnet-4-6", max_tokens=1, messages=[{"role": "user", "content": big}]
        )
    assert info.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    assert upstream.requests == []


@pytest.fixture(scope="module")
def routed(
    fake_anthropic: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SidecarProcess]:
    path: Path = tmp_path_factory.mktemp("cfg") / "sidecar.yaml"
    path.write_text(
        f"""
listeners:
  max_body_bytes: 4096
upstreams:
  anthropic:
    provider: anthropic
    base_url: {fake_anthropic.base_url}
routes:
  - match: "claude-*"
    upstream: anthropic
  - match: grok-3
    upstream: anthropic
    model: claude-sonnet-4-6
aliases:
  sonnet: claude-sonnet-4-6
"""
    )
    sp = start_sidecar("--config", str(path))
    yield sp
    sp.stop()


def test_unknown_model_is_404(routed: SidecarProcess, upstream: FakeAnthropic) -> None:
    client = anthropic.Anthropic(base_url=routed.http_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="gpt-4o", max_tokens=1, messages=[{"role": "user", "content": "hi"}])
    assert "gpt-4o" in info.value.body["error"]["message"]  # type: ignore[index]
    assert upstream.requests == []


def test_alias_and_rename_reach_upstream_as_configured(
    routed: SidecarProcess, upstream: FakeAnthropic
) -> None:
    client = anthropic.Anthropic(base_url=routed.http_url, api_key="k", max_retries=0)
    client.messages.create(model="sonnet", max_tokens=1, messages=[{"role": "user", "content": "hi"}])
    client.messages.create(model="grok-3", max_tokens=1, messages=[{"role": "user", "content": "hi"}])
    assert [r.json()["model"] for r in upstream.requests] == ["claude-sonnet-4-6", "claude-sonnet-4-6"]


def test_configured_body_limit(routed: SidecarProcess, upstream: FakeAnthropic) -> None:
    r = httpx.post(
        routed.http_url + "/v1/messages",
        json={**OK, "messages": [{"role": "user", "content": "x" * 5000}]},
        headers=H,
    )
    _envelope(r, 413, "request_too_large", "4096")
