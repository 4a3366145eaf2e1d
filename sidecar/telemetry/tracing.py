"""OpenTelemetry traces: the tracer provider, OTLP/gRPC export, W3C trace context in and out.

One ``TracerProvider`` per process (not installed as the global one), its spans batched to the
OTLP/gRPC exporter. The exporter, sampler (``OTEL_TRACES_SAMPLER``, default parent-based always
on), batching (``OTEL_BSP_*``) and resource (``OTEL_RESOURCE_ATTRIBUTES``) read the standard
``OTEL_*`` variables; the endpoint is resolved by ``settings.traces_endpoint``. Message content
is never recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from .. import __version__
from ..config.model import TracesConfig

__all__ = ["CLIENT", "ERROR", "SERVER", "Tracing", "format_traceparent", "parse_traceparent"]

SERVER = SpanKind.SERVER
CLIENT = SpanKind.CLIENT
ERROR = Status(StatusCode.ERROR)
DEFAULT_SERVICE_NAME = "messages-sidecar"
# W3C trace context: version-traceid-parentid-flags, lower-case hex; later versions may add fields.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def parse_traceparent(traceparent: str, tracestate: str | None = None) -> SpanContext | None:
    """The remote parent a W3C ``traceparent`` names, or None when it is invalid (then the
    ``tracestate`` is dropped too, as the spec says)."""
    m = _TRACEPARENT.fullmatch(traceparent.strip())
    if m is None:
        return None
    version, trace_hex, span_hex, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    state = TraceState.from_header([tracestate]) if tracestate else None
    return SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(flags, 16)), trace_state=state
    )


def format_traceparent(span: Span) -> tuple[str, str | None] | None:
    """The W3C ``traceparent`` (and ``tracestate``, when there is one) naming ``span`` as the
    parent, or None for an invalid span context."""
    sc = span.get_span_context()
    if not sc.is_valid:
        return None
    state = sc.trace_state.to_header() if sc.trace_state else None
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{sc.trace_flags:02x}", state


class Tracing:
    """The process's tracer. ``shutdown`` flushes queued spans (call it once, at stop).

    Observers reach the span kinds and the error status through it (``SERVER``, ``CLIENT``,
    ``ERROR``), so nothing imports opentelemetry unless a traces endpoint is configured."""

    SERVER = SERVER
    CLIENT = CLIENT
    ERROR = ERROR

    def __init__(self, endpoint: str, config: TracesConfig, env: Mapping[str, str]) -> None:
        attributes: dict[str, Any] = {SERVICE_VERSION: __version__}
        if config.service_name:
            attributes[SERVICE_NAME] = config.service_name
        elif not env.get("OTEL_SERVICE_NAME") and "service.name=" not in env.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        ):
            attributes[SERVICE_NAME] = DEFAULT_SERVICE_NAME
        # Shut down by the runtime, within its grace period (not by an atexit hook).
        self.provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
        self.exporter = OTLPSpanExporter(endpoint=endpoint)
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("sidecar", __version__)

    @staticmethod
    def inject(headers: dict[str, str], span: Span) -> None:
        """Name ``span`` as the parent in an upstream request's ``traceparent``/``tracestate``."""
        parent = format_traceparent(span)
        if parent is None:
            return
        headers["traceparent"] = parent[0]
        if parent[1]:
            headers["tracestate"] = parent[1]
        else:
            headers.pop("tracestate", None)

    @staticmethod
    def parent(headers: Mapping[str, str]) -> Context | None:
        """The caller's trace context from its ``traceparent``/``tracestate`` headers (or gRPC
        metadata), or None when it sent none (or an invalid one): the SERVER span is then a root."""
        traceparent = headers.get("traceparent")
        if traceparent is None:
            return None
        remote = parse_traceparent(traceparent, headers.get("tracestate"))
        return None if remote is None else trace.set_span_in_context(NonRecordingSpan(remote))

    def start(
        self, name: str, kind: SpanKind, parent: Context | None, attributes: Mapping[str, Any] | None
    ) -> Span:
        return self.tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    @staticmethod
    def child_context(span: Span) -> Context:
        return trace.set_span_in_context(span)

    def shutdown(self) -> None:
        """Export what is queued and stop; blocks while the collector is unreachable (up to
        the exporter's timeout), so callers bound the wait (see ``LiveTelemetry.aclose``)."""
        self.provider.shutdown()
