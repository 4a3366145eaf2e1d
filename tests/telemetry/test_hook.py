"""The hook's "off" form: what ``build_telemetry`` gives when nothing is configured."""

from __future__ import annotations

from sidecar.config import build_config
from sidecar.core import NOOP_REQUEST
from sidecar.telemetry import NOOP_TELEMETRY, build_telemetry
from tests.conftest import MOCK_CONFIG


def test_nothing_configured_is_the_shared_noop() -> None:
    config = build_config({**MOCK_CONFIG, "telemetry": {"metrics": False}})
    telemetry = build_telemetry(config, env={})
    assert telemetry is NOOP_TELEMETRY
    assert telemetry.begin("http", "/v1/messages", {}) is NOOP_REQUEST
    assert telemetry.render_metrics() is None
