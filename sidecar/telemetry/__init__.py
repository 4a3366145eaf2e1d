"""Telemetry: Prometheus metrics and OpenTelemetry traces, behind two narrow interfaces.

Everything that imports ``prometheus_client`` or ``opentelemetry`` lives in this package, and only
``build_telemetry`` loads it. The doors and the runtime hold a ``hook.Telemetry``; per request they
see the observer interfaces of ``sidecar.core.call``: a door begins a ``RequestObserver``, the
pipeline's ``Observed`` filter reports each upstream attempt to it, the door finishes it.
``live`` implements them over ``registry`` (metric cells), ``request`` and ``attempt``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core import NOOP_ATTEMPT, NOOP_REQUEST, AttemptObserver, RequestObserver
from .hook import NOOP_TELEMETRY, Telemetry

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..config import Config

__all__ = [
    "NOOP_ATTEMPT",
    "NOOP_REQUEST",
    "NOOP_TELEMETRY",
    "AttemptObserver",
    "RequestObserver",
    "Telemetry",
    "build_telemetry",
]


def build_telemetry(config: Config, env: Mapping[str, str] | None = None) -> Telemetry:
    """The telemetry a config asks for: metrics when ``telemetry.metrics`` is on, traces when an
    OTLP endpoint is configured (``telemetry.traces.endpoint`` or the standard ``OTEL_*``
    variables), and the shared no-op when neither is."""
    import os

    from .settings import traces_endpoint

    env = os.environ if env is None else env
    endpoint = traces_endpoint(config.telemetry.traces, env)
    if not config.telemetry.metrics and endpoint is None and not config.telemetry.request_log:
        return NOOP_TELEMETRY
    from .live import LiveTelemetry

    return LiveTelemetry(config, endpoint, env)
