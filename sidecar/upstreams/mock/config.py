"""The mock's settings: ``MockConfig``, and the models it lists by default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import ConfigError

__all__ = ["DEFAULT_MODELS", "MockConfig"]

#: Model ids the mock lists by default (it answers any model name).
DEFAULT_MODELS: tuple[str, ...] = (
    "mock-1",
    "claude-sonnet-4-6",
    "claude-opus-4-8",
    "claude-haiku-4-5-20251001",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class MockConfig:
    """Settings of one mock upstream; every field has a default, so ``MockConfig()`` works."""

    #: Answer length in words (= output tokens) when no ``[mock words=N]`` directive is given.
    words: int = 24
    #: Milliseconds before the first content delta (and before a non-streamed answer).
    ttft_ms: float = 0
    #: Milliseconds between content deltas.
    gap_ms: float = 0
    #: Words per text_delta / thinking_delta event.
    words_per_delta: int = 3
    #: Length of the thinking block in words when thinking is on (capped by ``budget_tokens``).
    thinking_words: int = 16
    #: Model ids returned by ``list_models``; a list is accepted and kept as a tuple.
    models: Sequence[str] = DEFAULT_MODELS

    def __post_init__(self) -> None:
        for name in ("words", "words_per_delta", "thinking_words"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"mock: {name} must be a non-negative integer, not {value!r}")
        if self.words_per_delta < 1:
            raise ConfigError("mock: words_per_delta must be at least 1")
        for name in ("ttft_ms", "gap_ms"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"mock: {name} must be a non-negative number, not {value!r}")
        if isinstance(self.models, str) or not all(isinstance(m, str) and m for m in self.models):
            raise ConfigError("mock: models must be a list of non-empty strings")
        object.__setattr__(self, "models", tuple(self.models))
