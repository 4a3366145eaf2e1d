"""A Call: one Messages API request as the core sees it, whichever door it came in by."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..telemetry.hook import NOOP_REQUEST, RequestObserver

__all__ = ["Call", "new_request_id"]

_B62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Each random byte maps onto a base62 character (a slight bias, harmless for ids), in C.
_TO_B62 = bytes.maketrans(bytes(range(256)), bytes(_B62[i % 62] for i in range(256)))


def new_request_id(prefix: str = "req_") -> str:
    """A fresh id in the API's style: a prefix and 24 base62 characters (``req_01...``)."""
    return prefix + "01" + os.urandom(22).translate(_TO_B62).decode()


@dataclass(slots=True, kw_only=True)
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
    headers: dict[str, str] = field(default_factory=dict)
    # Absolute deadline on time.monotonic(), from the gRPC deadline or the client's timeout.
    deadline: float | None = None
    started: float = field(default_factory=time.perf_counter)
    # The name the client asked for, before aliases and renames.
    requested_model: str = ""
    # Seconds spent waiting for upstream answers (all attempts), for Server-Timing.
    upstream_wait: float = 0.0
    # The local input-token estimate, once something needed it (admission, upstream pacing).
    input_estimate: int | None = None
    # Telemetry for this request (``sidecar.telemetry.hook``): the door begins and finishes it,
    # the core reports upstream attempts to it. The no-op unless telemetry is on.
    observer: RequestObserver = NOOP_REQUEST

    def estimate(self) -> int:
        """The local input-token estimate of the body (computed once)."""
        if self.input_estimate is None:
            from ..translate.estimate import estimate_input_tokens

            self.input_estimate = estimate_input_tokens(self.body)
        return self.input_estimate

    def remaining(self) -> float | None:
        """Seconds left before the client's deadline, or None when it set none."""
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()
