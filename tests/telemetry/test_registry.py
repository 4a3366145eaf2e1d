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
