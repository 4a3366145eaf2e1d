"""Configuration: typed, immutable snapshots validated at load."""

from __future__ import annotations

from .load import build_config, default_config, load_config, substitute_env
from .model import (
    AnthropicUpstreamConfig,
    Config,
    GrpcListener,
    HttpListener,
    Listeners,
    MockUpstreamConfig,
    Route,
    Timeouts,
    UpstreamConfig,
)

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
    "build_config",
    "default_config",
    "load_config",
    "substitute_env",
]
