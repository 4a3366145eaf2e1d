"""A Call: one Messages API request as the core sees it, whichever door it came in by; the
``Target`` routing chose for it; and the observer interfaces through which telemetry sees it.

Telemetry observes a call through two small interfaces, defined here so the core depends on
nothing above it; ``sidecar.telemetry`` implements them. Per request, in order:

1. A door calls ``Telemetry.begin(door, method, headers)`` when the request arrives and stores
   the returned ``RequestObserver`` on the Call (``NOOP_REQUEST`` when telemetry is off, so the
   hot path allocates nothing for it).
2. The pipeline calls ``RequestObserver.attempt(call, target, upstream)`` just before each
   upstream attempt. With tracing on this starts the CLIENT span and writes its ``traceparent``
   into ``call.headers``. The attempt then ends through exactly one of
   ``AttemptObserver.failed(exc)`` or ``AttemptObserver.answered(answer)``, which reads usage from
   a JSON answer at once, or wraps a streamed answer's ``EventStream`` so usage, time to first
   token and the gaps between content deltas are seen as the events pass.
3. The door calls ``RequestObserver.finish(...)`` exactly once, when the response is complete,
   has failed, or the client went away (``cancelled=True``); calls after the first are ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .answer import Answer
from .estimate import estimate_input_tokens

_T = TypeVar("_T")

try:  # mypyc reads the decorator when it compiles; at run time it changes nothing
    from mypy_extensions import mypyc_attr
except ImportError:  # a runtime without mypy (the image)

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Callable[[_T], _T]:
        return lambda cls: cls


__all__ = [
    "NOOP_ATTEMPT",
    "NOOP_REQUEST",
    "AttemptObserver",
    "Call",
    "RequestObserver",
    "Target",
    "UpstreamInfo",
]


@dataclass(frozen=True, slots=True)
class Target:
    """Where routing sent a call: the upstream's name and the model name to ask it for."""

    upstream: str
    model: str  # the model name the upstream is asked for (after aliases and renames)
    route: str = ""  # the route's name (its match pattern), for headers, logs and metrics
    # Seconds the adapter may take to connect for this attempt (a route policy's
    # `timeouts.connect`); None: the upstream's own `timeouts.connect`.
    connect_timeout: float | None = None


class UpstreamInfo(Protocol):
    """What an observer may read of the upstream an attempt goes to (``Upstream`` has it)."""

    name: str
    provider: str


# The observers are subclassed by telemetry (compiled) and by tests (interpreted).
@mypyc_attr(allow_interpreted_subclasses=True)
class AttemptObserver:
    """One upstream attempt. The base class observes nothing."""

    __slots__ = ()

    def answered(self, answer: Answer) -> Answer:
        """The upstream answered: returns the answer to hand on (its stream possibly wrapped)."""
        return answer

    def failed(self, error: BaseException) -> None:
        """The upstream attempt raised ``error`` (cancellation included) before answering."""


@mypyc_attr(allow_interpreted_subclasses=True)
class RequestObserver:
    """One Messages or count_tokens request. The base class observes nothing."""

    __slots__ = ()

    def attempt(self, call: Call, target: Target, upstream: UpstreamInfo) -> AttemptObserver:
        """An upstream attempt is about to start (see the module docstring)."""
        return NOOP_ATTEMPT

    def identify(self, request_id: str) -> None:
        """The sidecar's request id, for the request log."""

    def finish(self, error: BaseException | None = None, *, cancelled: bool = False) -> None:
        """The request is over: ``error`` is what failed it (a ``SidecarError`` names its type;
        anything else counts as ``api_error``), ``cancelled`` that the client went away. With
        neither, an error seen in the answer's stream (an ``error`` event, a broken stream) still
        marks it failed."""


NOOP_ATTEMPT = AttemptObserver()
NOOP_REQUEST = RequestObserver()


# ``__init__`` is written out: the dataclass one (keyword-only) is generated code the compiled
# build would run interpreted, once per request.
@dataclass(slots=True, init=False)
class Call:
    """One request to an Anthropic-shaped endpoint.

    ``body`` is the request JSON as a dict. ``raw`` is the client's original body bytes when it
    came in as JSON and nothing has changed it since: an Anthropic upstream is sent these bytes
    so unknown fields, key order and number spelling survive. Whoever changes ``body`` must set
    ``raw`` to None (or splice it, see ``sidecar.core.jsonbytes``).
    """

    endpoint: str  # "messages" | "count_tokens"
    body: dict[str, Any]
    raw: bytes | None
    model: str
    stream: bool
    request_id: str
    door: str  # "http" | "grpc"
    # Client headers to forward upstream, lower-case names (credentials included; the adapter
    # replaces them when an upstream key is configured).
    headers: dict[str, str]
    # Absolute deadline on time.monotonic(), from the gRPC deadline or the client's timeout.
    deadline: float | None
    started: float  # time.perf_counter() when the call was made (unless given)
    # The name the client asked for, before aliases and renames.
    requested_model: str
    # Seconds spent waiting for upstream answers (all attempts), for Server-Timing.
    upstream_wait: float
    # The local input-token estimate, once something needed it (admission, upstream pacing).
    input_estimate: int | None
    # Validation found only plain content blocks (text, tool_use, tool_result, thinking): none
    # can reference a file, so nothing needs looking for one.
    plain_blocks: bool
    # Telemetry for this request (the interfaces above): the door begins and finishes it, the
    # pipeline reports upstream attempts to it. The no-op unless telemetry is on.
    observer: RequestObserver

    def __init__(
        self,
        *,
        endpoint: str,
        body: dict[str, Any],
        raw: bytes | None,
        model: str,
        stream: bool,
        request_id: str,
        door: str,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
        started: float | None = None,
        requested_model: str = "",
        upstream_wait: float = 0.0,
        input_estimate: int | None = None,
        plain_blocks: bool = False,
        observer: RequestObserver = NOOP_REQUEST,
    ) -> None:
        self.endpoint = endpoint
        self.body = body
        self.raw = raw
        self.model = model
        self.stream = stream
        self.request_id = request_id
        self.door = door
        self.headers = {} if headers is None else headers
        self.deadline = deadline
        self.started = time.perf_counter() if started is None else started
        self.requested_model = requested_model
        self.upstream_wait = upstream_wait
        self.input_estimate = input_estimate
        self.plain_blocks = plain_blocks
        self.observer = observer

    def estimate(self) -> int:
        """The local input-token estimate of the body (computed once)."""
        if self.input_estimate is None:
            self.input_estimate = estimate_input_tokens(self.body)
        return self.input_estimate

    def remaining(self) -> float | None:
        """Seconds left before the client's deadline, or None when it set none."""
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()
