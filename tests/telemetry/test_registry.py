"""The live registry: the ``model`` label bounded for glob routes."""

from __future__ import annotations

from sidecar.config import build_config
from sidecar.core import Target
from sidecar.telemetry.registry import Registry
from tests.conftest import MOCK_CONFIG


def test_model_label_bounds() -> None:
    config = build_config({**MOCK_CONFIG, "telemetry": {"model_label_limit": 2}})
    registry = Registry(config, None, {})
    labels = [registry.model_label(Target("m", f"x{i}", "*")) for i in range(5)]
    assert labels == ["x0", "x1", "other", "other", "other"]
    assert registry.model_label(Target("m", "x1", "x*")) == "x1"  # already known
    # Exact routes (bounded by the config) always keep their own name.
    assert registry.model_label(Target("m", "exact", "exact")) == "exact"


def test_a_model_name_that_is_no_model_id_is_counted_as_other() -> None:
    # Found by the sweep campaign: a model name with CR/LF and a header line after it became a
    # `model` label as it was (a raw CR in /metrics, "x-injected: 1" inside a label).
    config = build_config(MOCK_CONFIG)
    registry = Registry(config, None, {})
    for model in (
        "claude\r\nx-injected: 1",
        "a\nb",
        "two words",
        'q"uote',
        "back\\slash",
        "modèle",
        "m" * 129,
    ):
        assert registry.model_label(Target("m", model, "*")) == "other", model
    assert registry.model_label(Target("m", "claude-sonnet-4-6", "*")) == "claude-sonnet-4-6"
    assert (
        registry.model_label(Target("m", "us.anthropic.claude-3:0@v1/x", "*"))
        == "us.anthropic.claude-3:0@v1/x"
    )
