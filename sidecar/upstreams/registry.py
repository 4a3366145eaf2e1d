"""Upstream adapters by provider name: the one place that knows them all.

No registration on import: this table is the registry. Each entry is the config class that
selects it (the ``provider`` tag) and a factory from (name, config) to an adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import AnthropicUpstreamConfig, MockUpstreamConfig, UpstreamConfig
from ..config.model import OpenAIUpstreamConfig
from ..core import Upstream

__all__ = ["PROVIDERS", "build_upstream"]


def _anthropic(name: str, config: Any) -> Upstream:
    from .anthropic import AnthropicUpstream

    return AnthropicUpstream(name, config)


def _openai(name: str, config: Any) -> Upstream:
    from .openai import OpenAIUpstream

    return OpenAIUpstream(name, config)


def _mock(name: str, config: Any) -> Upstream:
    from .mock import MockConfig, MockUpstream

    fields = {
        "words": config.words,
        "ttft_ms": config.ttft_ms,
        "gap_ms": config.gap_ms,
        "words_per_delta": config.words_per_delta,
        "thinking_words": config.thinking_words,
    }
    if config.models is not None:
        fields["models"] = list(config.models)
    return MockUpstream(name, MockConfig(**fields))


# provider -> (config class, factory, status)
PROVIDERS: dict[str, tuple[type, Callable[[str, Any], Upstream], str]] = {
    "anthropic": (AnthropicUpstreamConfig, _anthropic, "stable"),
    "mock": (MockUpstreamConfig, _mock, "stable"),
    "openai": (OpenAIUpstreamConfig, _openai, "stable"),
}


def build_upstream(name: str, config: UpstreamConfig) -> Upstream:
    for cls, factory, _status in PROVIDERS.values():
        if isinstance(config, cls):
            return factory(name, config)
    raise TypeError(f"no adapter for {type(config).__name__}")  # unreachable: config is validated
