"""The narrow hook through which telemetry observes calls and answers, and its no-op form.

Nothing here imports prometheus_client or opentelemetry: the doors and the core only see these
three small interfaces, and when telemetry is off they get the shared no-op singletons below, so
the hot path allocates nothing for it.

Per request, in order:

1. A door calls ``Telemetry.begin(door, method, headers)`` when the request arrives
   (``headers`` are the client's lower-case headers or gRPC metadata; ``traceparent`` and
   ``tracestate`` are read from them) and stores the returned ``RequestObserver`` on the Call.
2. The core calls ``RequestObserver.attempt(call, target, upstream)`` just before each upstream
   attempt. With tracing on this starts the CLIENT span and writes its ``traceparent`` into
   ``call.headers``, so the upstream request carries it. The attempt then ends through exactly
   one of ``AttemptObserver.failed(exc)`` (``send`` raised) or ``AttemptObserver.answered(answer)``,
   which reads usage from a JSON answer at once, or wraps a streamed answer's ``EventStream`` so
   usage, time to first token and the gaps between content deltas are seen as the events pass
   (the attempt ends when that stream is exhausted or closed).
3. The door calls ``RequestObserver.finish(...)`` exactly once, when the response is complete, has
   failed, or the client went away (``cancelled=True``); calls after the first are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..admission.gate import Admission
    from ..admission.pacing import Pacers
    from ..core import Answer, Call
    from ..upstreams import Target, Upstream

__all__ = [
    "NOOP_ATTEMPT",
    "NOOP_REQUEST",
    "NOOP_TELEMETRY",
    "AttemptObserver",
    "RequestObserver",
    "Telemetry",
]


class AttemptObserver:
    """One upstream attempt. The base class observes nothing."""

    __slots__ = ()

    def answered(self, answer: Answer) -> Answer:
        """The upstream answered: returns the answer to hand on (its stream possibly wrapped)."""
        return answer

    def failed(self, error: BaseException) -> None:
        """The upstream attempt raised ``error`` (cancellation included) before answering."""


class RequestObserver:
    """One Messages or count_tokens request. The base class observes nothing."""

    __slots__ = ()

    def attempt(self, call: Call, target: Target, upstream: Upstream) -> AttemptObserver:
        """An upstream attempt is about to start (see the module docstring)."""
        return NOOP_ATTEMPT

    def identify(self, request_id: str) -> None:
        """The sidecar's request id, for the request log."""

    def finish(self, error: BaseException | None = None, *, cancelled: bool = False) -> None:
        """The request is over: ``error`` is what failed it (a ``SidecarError`` names its type;
        anything else counts as ``api_error``), ``cancelled`` that the client went away. With
        neither, an error seen in the answer's stream (an ``error`` event, a broken stream) still
        marks it failed."""


class Telemetry:
    """Process-wide telemetry. This base class is the "off" implementation."""

    metrics_enabled = False
    tracing_enabled = False

    def begin(self, door: str, method: str, headers: Mapping[str, str]) -> RequestObserver:
        """A request arrived at ``door`` ("http" | "grpc") for ``method``: the HTTP path
        (``/v1/messages``, ``/v1/messages/count_tokens``) or the gRPC method name
        (``CreateMessage``, ``StreamMessage``, ``CountTokens``)."""
        return NOOP_REQUEST

    def render_metrics(self) -> tuple[bytes, str] | None:
        """The Prometheus exposition (body, content type); None when metrics are off."""
        return None

    def config_reload(self, result: str) -> None:
        """A config reload was attempted: ``result`` is "ok" or "error"."""

    def watch_breakers(self, source: Callable[[], Iterable[tuple[str, str, str]]]) -> None:
        """Report circuit breaker states at each scrape: ``source()`` gives (route, upstream,
        state) with state "closed" | "open" | "half_open"."""

    def watch_admission(self, source: Callable[[], tuple[Admission | None, Pacers]]) -> None:
        """Report admission and upstream pacing counters at each scrape: ``source()`` gives the
        running snapshot's ``Admission`` (None when off) and the process's ``Pacers``."""

    async def aclose(self) -> None:
        """Flush and stop exporters (the span queue is flushed before this returns)."""


NOOP_ATTEMPT = AttemptObserver()
NOOP_REQUEST = RequestObserver()
NOOP_TELEMETRY = Telemetry()
