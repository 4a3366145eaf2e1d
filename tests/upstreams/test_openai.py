"""The openai adapter's small parts: URL building, SSE data parsing, config rules."""

from __future__ import annotations

import pytest

from sidecar.config import build_config, default_config
from sidecar.errors import ConfigError
from sidecar.upstreams.openai import DataLines, completions_url


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://h:8000", "http://h:8000/v1/chat/completions"),
        ("http://h:8000/", "http://h:8000/v1/chat/completions"),
        ("https://api.x.ai/v1", "https://api.x.ai/v1/chat/completions"),
        ("https://gw/api/openai/v1/", "https://gw/api/openai/v1/chat/completions"),
        ("https://gw/v1beta", "https://gw/v1beta/chat/completions"),
    ],
)
def test_completions_url(base: str, url: str) -> None:
    assert completions_url(base) == url


def test_data_lines() -> None:
    lines = DataLines()
    assert lines.feed(b': keep-alive\n\ndata: {"a"') == []
    assert lines.feed(b":1}\r\n\r\nevent: x\ndata: [DONE]\n\n") == [b'{"a":1}', b"[DONE]"]
    # A server that forgets blank lines between data lines.
    assert lines.feed(b'data: {"b":1}\ndata: {"c":2}\n') == [b'{"b":1}']
    assert lines.flush() == [b'{"c":2}']
    assert lines.feed(b'data: {"d":3}') == []
    assert lines.flush() == [b'{"d":3}']


def _config(**options: object) -> None:
    build_config(
        {"upstreams": {"o": {"provider": "openai", **options}}, "routes": [{"match": "*", "upstream": "o"}]}
    )


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"base_url": "ftp://x"}, "upstreams.o.base_url"),
        ({"base_url": "http://x/v1/chat/completions"}, "upstreams.o.base_url"),
        ({"ping_interval": 0}, "upstreams.o.ping_interval"),
        ({"max_tokens_field": "tokens"}, "upstreams.o.max_tokens_field"),
        ({"response_model": "other"}, "upstreams.o.response_model"),
        ({"system_role": "boss"}, "upstreams.o.system_role"),
        ({"api_key": "k", "extra_headers": {"Authorization": "Bearer x"}}, "upstreams.o.extra_headers"),
        ({"extra_headers": {"Host": "x"}}, "upstreams.o.extra_headers"),
        ({"unknown": 1}, "upstreams.o"),
    ],
)
def test_config_rules(options: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _config(**options)
    assert str(info.value).startswith(words), str(info.value)


def test_config_defaults_and_config_free_form() -> None:
    _config(base_url="http://127.0.0.1:8000/v1", api_key="k", extra_headers={"X-A": "b"})
    config = default_config("http://h/v1", None, "openai", "llama")
    up = config.upstreams["default"]
    assert type(up).__name__ == "OpenAIUpstreamConfig" and up.ping_interval == 10.0
    assert config.routes[0].model == "llama"
    with pytest.raises(ConfigError):
        default_config(None, None, "anthropic", "llama")
