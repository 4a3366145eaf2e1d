"""Where spans go: the traces endpoint from the config, then the standard ``OTEL_*`` variables."""

from __future__ import annotations

from sidecar.config.model import TracesConfig
from sidecar.telemetry.settings import traces_endpoint


def test_traces_endpoint_from_config_then_environment() -> None:
    none = TracesConfig()
    assert traces_endpoint(none, {}) is None
    assert traces_endpoint(none, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}) == "http://c:4317"
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4317",
    }
    assert traces_endpoint(none, env) == "http://t:4317"
    assert traces_endpoint(TracesConfig(endpoint="http://y:4317"), env) == "http://y:4317"
    assert traces_endpoint(TracesConfig(endpoint="http://y:4317"), {"OTEL_SDK_DISABLED": "true"}) is None
    assert traces_endpoint(none, {**env, "OTEL_TRACES_EXPORTER": "none"}) is None
