from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config import (
    AnthropicUpstreamConfig,
    MockUpstreamConfig,
    build_config,
    default_config,
    load_config,
)
from sidecar.errors import ConfigError

GOOD = """
listeners:
  host: 127.0.0.1
  http: {port: 9000}
  grpc: {enabled: false}
upstreams:
  main:
    provider: anthropic
    base_url: ${BASE:-https://api.anthropic.com}
    api_key: ${KEY}
    timeouts: {connect: 2.5}
  mock:
    provider: mock
    words: 5
routes:
  - match: "claude-*"
    upstream: main
  - match: "*"
    upstream: mock
aliases:
  sonnet: claude-sonnet-4-6
"""


def test_loads_with_env_substitution(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    config = load_config(path, env={"KEY": "sk-secret"})
    main = config.upstreams["main"]
    assert isinstance(main, AnthropicUpstreamConfig)
    assert main.api_key == "sk-secret" and main.base_url == "https://api.anthropic.com"
    assert main.timeouts.connect == 2.5 and main.timeouts.read == 600.0
    assert isinstance(config.upstreams["mock"], MockUpstreamConfig)
    assert config.listeners.http.port == 9000 and not config.listeners.grpc.enabled
    assert config.aliases == {"sonnet": "claude-sonnet-4-6"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD, "upstreams.main.api_key: environment variable KEY is not set"),
        (
            GOOD.replace("connect: 2.5", "connect: soon"),
            "upstreams.main.timeouts.connect: Expected `float`, got `str`",
        ),
        (GOOD.replace("provider: mock", "provider: mocky"), "upstreams.mock.provider: Invalid value 'mocky'"),
        (
            GOOD.replace("http: {port: 9000}", "http: {prot: 9000}"),
            "listeners.http: Object contains unknown field `prot`",
        ),
        (
            GOOD.replace("upstream: mock", "upstream: nowhere"),
            "routes.1.upstream: no upstream named 'nowhere'",
        ),
        (
            GOOD.replace("http: {port: 9000}", "http: {port: 70000}"),
            "listeners.http.port: must be between 0 and 65535",
        ),
        (
            GOOD.replace("http: {port: 9000}", "http: {public_origin: 'https://sidecar.example/v1'}"),
            "public_origin: must be http(s)://host[:port] and nothing more, got 'https://sidecar.example/v1'",
        ),
        ("routes: [\n  - {match: x", "invalid YAML"),
        ("- a\n- b\n", "mapping at the top level"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={} if "KEY" in message else {"KEY": "k"})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config("/nonexistent/sidecar.yaml")


def test_defaults() -> None:
    mock = default_config()
    assert isinstance(mock.upstreams["mock"], MockUpstreamConfig)
    assert mock.listeners.http.port == 8080 and mock.listeners.grpc.port == 50051
    assert mock.listeners.host == "127.0.0.1"
    proxy = default_config("http://up.example:1234", "k")
    up = proxy.upstreams["default"]
    assert (
        isinstance(up, AnthropicUpstreamConfig)
        and up.base_url == "http://up.example:1234"
        and up.api_key == "k"
    )


def test_requires_upstreams_and_routes() -> None:
    with pytest.raises(ConfigError, match="upstreams: at least one"):
        build_config({})
    with pytest.raises(ConfigError, match="routes: at least one"):
        build_config({"upstreams": {"m": {"provider": "mock"}}})
