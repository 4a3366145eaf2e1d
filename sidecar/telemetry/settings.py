"""Which telemetry is on: read from the config and the standard ``OTEL_*`` variables (no imports
of prometheus_client or opentelemetry here, so deciding costs nothing when everything is off)."""

from __future__ import annotations

from collections.abc import Mapping

from ..config.model import TracesConfig

__all__ = ["traces_endpoint"]


def traces_endpoint(config: TracesConfig, env: Mapping[str, str]) -> str | None:
    """The OTLP/gRPC endpoint spans go to, or None when tracing is off.

    ``telemetry.traces.endpoint`` wins; else ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else
    ``OTEL_EXPORTER_OTLP_ENDPOINT``. ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``
    switch tracing off whatever is set.
    """
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")}
    if exporters == {"none"}:
        return None
    for value in (
        config.endpoint,
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ):
        if value and value.strip():
            return value.strip()
    return None
