"""The typed configuration: frozen structs, every default documented, validated once at load.

A YAML file (see README) is decoded into ``Config``; unknown keys are errors, so a typo never
silently does nothing. Upstreams are a tagged union on ``provider``.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "AnthropicUpstreamConfig",
    "Config",
    "GrpcListener",
    "HttpListener",
    "Listeners",
    "MockUpstreamConfig",
    "Route",
    "Timeouts",
    "UpstreamConfig",
]

DEFAULT_MAX_BODY = 32 * 1024 * 1024  # the API's own limit for Messages and count_tokens


class _Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class HttpListener(_Base, frozen=True):
    """The HTTP door: the Anthropic API on ``host:port`` (port 0 picks a free port)."""

    enabled: bool = True
    port: int = 8080


class GrpcListener(_Base, frozen=True):
    """The gRPC door (service ``sidecar.messages.v1.Messages``, health and reflection)."""

    enabled: bool = True
    port: int = 50051


class Listeners(_Base, frozen=True):
    host: str = "127.0.0.1"  # API listeners stay on loopback by default
    http: HttpListener = HttpListener()
    grpc: GrpcListener = GrpcListener()
    max_body_bytes: int = DEFAULT_MAX_BODY  # larger bodies get 413 request_too_large (both doors)


class Timeouts(_Base, frozen=True):
    connect: float = 10.0  # seconds to open a connection to the upstream
    read: float = 600.0  # seconds of silence from the upstream before giving up (the SDK's default)


class AnthropicUpstreamConfig(_Base, frozen=True, tag_field="provider", tag="anthropic"):
    """The real Anthropic API, or anything that speaks it (another sidecar included)."""

    base_url: str = "https://api.anthropic.com"
    # Replaces the client's credentials when set; without it the client's own x-api-key /
    # Authorization headers are forwarded (a transparent proxy).
    api_key: str | None = None
    timeouts: Timeouts = Timeouts()
    max_connections: int = 256  # pooled keep-alive connections to this upstream


class MockUpstreamConfig(_Base, frozen=True, tag_field="provider", tag="mock"):
    """The built-in deterministic mock model (no network, no key)."""

    words: int = 24  # answer length in words, unless a prompt directive says otherwise
    ttft_ms: float = 0.0  # delay before the first content delta
    gap_ms: float = 0.0  # delay between content deltas
    words_per_delta: int = 3
    thinking_words: int = 16  # length of the thinking block when thinking is on
    models: list[str] | None = None  # model ids it lists (None: its built-in list)


UpstreamConfig = AnthropicUpstreamConfig | MockUpstreamConfig


class Route(_Base, frozen=True):
    """Model name (exact, or a glob with * ? [...]) -> one upstream, optionally renamed."""

    match: str
    upstream: str
    model: str | None = None  # the model name to ask the upstream for (default: as requested)


class Config(_Base, frozen=True):
    listeners: Listeners = Listeners()
    upstreams: dict[str, UpstreamConfig] = {}
    # Tried in order: exact names first (any position), then globs in the order written.
    routes: list[Route] = []
    # Alias -> model name, applied before routes (e.g. "sonnet": "claude-sonnet-4-6").
    aliases: dict[str, str] = {}
