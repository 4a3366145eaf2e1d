"""The bottom layer: what a request is (``Call``, ``Target``), what comes back (``Answer``,
``EventStream``), the two interfaces the pipeline calls (``Upstream``, the observers), and the
small tools every layer shares (clock, token estimate, credential names, SSE framing, the stream
grammar, request validation, an SQLite connection on its own thread). It imports nothing from the
package but ``sidecar.errors``.
"""

from __future__ import annotations

from .answer import Answer, EventStream, StreamEvent, encode_sse, error_from_event, event_name, event_usage
from .call import (
    NOOP_ATTEMPT,
    NOOP_REQUEST,
    AttemptObserver,
    Call,
    RequestObserver,
    Target,
    UpstreamInfo,
)
from .ids import new_request_id
from .upstream import ForwardRequest, Upstream

__all__ = [
    "NOOP_ATTEMPT",
    "NOOP_REQUEST",
    "Answer",
    "AttemptObserver",
    "Call",
    "EventStream",
    "ForwardRequest",
    "RequestObserver",
    "StreamEvent",
    "Target",
    "Upstream",
    "UpstreamInfo",
    "encode_sse",
    "error_from_event",
    "event_name",
    "event_usage",
    "new_request_id",
]
