"""The live registry: what telemetry keeps for the whole process.

The instruments and the tracer, the bounded ``model`` label, metric cells and in-flight gauges
cached per label set, and each upstream's server attributes (computed once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..config import Config
from ..core import Target, UpstreamInfo
from ..routing.router import is_glob
from .metrics import Cell, InFlight, Instruments

if TYPE_CHECKING:
    from .tracing import Tracing

__all__ = ["Registry", "labelable"]

_MAX_MODEL_LABEL = 128


def labelable(model: str) -> bool:
    """Whether a client's model name may be a label value as it is: printable ASCII without
    spaces, quotes or backslashes, at most 128 characters. Anything else (CR/LF and a header line
    after it, say) is counted under ``other``."""
    return (
        len(model) <= _MAX_MODEL_LABEL
        and model.isascii()
        and model.isprintable()
        and not any(c in model for c in ' "\\')
    )


class Registry:
    """Instruments (when ``telemetry.metrics`` is on), tracing (when an endpoint is given), and
    the label children and attributes the observers share."""

    def __init__(self, config: Config, traces_endpoint: str | None, env: Mapping[str, str]) -> None:
        settings = config.telemetry
        self.ins: Instruments | None = Instruments() if settings.metrics else None
        self.tracing: Tracing | None = None
        if traces_endpoint:  # opentelemetry is imported only when traces go somewhere
            from .tracing import Tracing

            self.tracing = Tracing(traces_endpoint, settings.traces, env)
        self._limit = settings.model_label_limit
        self.request_log = settings.request_log
        self._glob_models: set[str] = set()
        self._globs: dict[str, bool] = {}
        self._cells: dict[tuple[str, ...], Cell] = {}
        self._gauges: dict[tuple[str, str], InFlight] = {}
        self._servers: dict[UpstreamInfo, dict[str, Any]] = {}

    # -- bounded labels, cached children ---------------------------------------------------------
    def model_label(self, target: Target) -> str:
        """The ``model`` label: exact routes' models as they are, glob routes' first N, then other."""
        glob = self._globs.get(target.route)
        if glob is None:
            glob = self._globs[target.route] = is_glob(target.route)
        model = target.model
        if not glob or model in self._glob_models:
            return model
        if len(self._glob_models) < self._limit and labelable(model):
            self._glob_models.add(model)
            return model
        return "other"

    def cell(
        self, door: str, operation: str, target: Target | None, upstream: UpstreamInfo | None, stream: str
    ) -> Cell:
        assert self.ins is not None
        if target is None or upstream is None:
            key: tuple[str, ...] = (door, operation, "", "", "", "", stream)
        else:
            key = (
                door,
                operation,
                target.route,
                target.upstream,
                upstream.provider,
                self.model_label(target),
                stream,
            )
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = Cell(self.ins, key)
        return cell

    def gauge(self, door: str, operation: str) -> InFlight:
        assert self.ins is not None
        key = (door, operation)
        gauge = self._gauges.get(key)
        if gauge is None:
            gauge = self._gauges[key] = InFlight(self.ins, self.ins.in_flight.labels(door, operation))
        return gauge

    def server_attributes(self, upstream: UpstreamInfo) -> dict[str, Any]:
        """``server.address``/``server.port`` of an upstream with a base URL (computed once)."""
        attrs = self._servers.get(upstream)
        if attrs is None:
            attrs = {}
            base_url = getattr(upstream, "base_url", None)
            if isinstance(base_url, str):
                parts = urlsplit(base_url)
                if parts.hostname:
                    attrs["server.address"] = parts.hostname
                    port = parts.port or (443 if parts.scheme == "https" else 80)
                    attrs["server.port"] = port
            self._servers[upstream] = attrs
        return attrs
