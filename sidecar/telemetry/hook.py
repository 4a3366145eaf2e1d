"""The process-wide telemetry interface, and its "off" form.

Nothing here imports prometheus_client or opentelemetry. Per request, telemetry sees a call
through ``sidecar.core.call.RequestObserver`` and ``AttemptObserver`` (see that module for the
order of calls); this class is what the doors and the runtime hold for the whole process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from ..core import NOOP_REQUEST, RequestObserver

if TYPE_CHECKING:
    from ..admission.gate import Admission
    from ..admission.pacing import Pacers
    from ..core import Upstream

__all__ = ["NOOP_TELEMETRY", "Telemetry"]


class Telemetry:
    """Process-wide telemetry. This base class is the "off" implementation."""

    metrics_enabled = False
    tracing_enabled = False

    def begin(self, door: str, method: str, headers: Mapping[str, str]) -> RequestObserver:
        """A request arrived at ``door`` ("http" | "grpc") for ``method``: the HTTP path
        (``/v1/messages``, ``/v1/messages/count_tokens``) or the gRPC method name
        (``CreateMessage``, ``StreamMessage``, ``CountTokens``)."""
        return NOOP_REQUEST

    def flush_metrics(self) -> None:
        """Add the values requests gathered since the last flush to the instruments. Call it on
        the event loop's thread (the one requests run on) before ``render_metrics``."""

    def render_metrics(self) -> tuple[bytes, str] | None:
        """The Prometheus exposition (body, content type) as of the last ``flush_metrics``; None
        when metrics are off. Safe to call from another thread."""
        return None

    def config_reload(self, result: str) -> None:
        """A config reload was attempted: ``result`` is "ok" or "error"."""

    def set_ready(self, ready: bool) -> None:
        """Readiness changed: ``/readyz`` answers 200 while ``ready``, 503 otherwise."""

    def watch_breakers(self, source: Callable[[], Iterable[tuple[str, str, str]]]) -> None:
        """Report circuit breaker states at each scrape: ``source()`` gives (route, upstream,
        state) with state "closed" | "open" | "half_open"."""

    def watch_admission(self, source: Callable[[], tuple[Admission | None, Pacers]]) -> None:
        """Report admission and upstream pacing counters at each scrape: ``source()`` gives the
        running snapshot's ``Admission`` (None when off) and the process's ``Pacers``."""

    def watch_upstreams(self, source: Callable[[], Iterable[Upstream]]) -> None:
        """Report each upstream adapter's open connections (``Upstream.connections``) at each
        scrape: ``source()`` gives the running snapshot's adapters."""

    async def aclose(self) -> None:
        """Flush and stop exporters (the span queue is flushed before this returns)."""


NOOP_TELEMETRY = Telemetry()
