"""Sidecar chains: a hop counter against loops, and ``Server-Timing`` per hop.

Every sidecar reads ``sidecar-hops`` (how many sidecars the request already passed), refuses
the request when that reaches ``max_hops``, and sends ``hops + 1`` upstream. A loop (A -> B ->
A ...) therefore ends after ``max_hops`` sidecars with one clear error instead of running until
a timeout. On the way back each sidecar puts its own overhead (its time minus its upstream's) in
front of the ``server-timing`` header, so the client reads the chain outermost first::

    server-timing: sidecar-1;dur=0.8;desc="edge", sidecar-2;dur=0.6;desc="zone-a"

The refusal is ``HopLimitExceeded`` (in the error tree, ``sidecar.errors``): HTTP 508 (Loop
Detected, RFC 5842, the status that says exactly this) with the ``api_error`` type (so gRPC
INTERNAL: a deployment fault, not the client's request) and ``x-should-retry: false``, because
retrying a loop never helps and the SDKs would otherwise retry any status >= 500. ``invalid_request_error`` was the alternative; it
was rejected because it tells the caller to fix a request that is fine.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config.policy import HopConfig
from .errors import HopLimitExceeded, InvalidRequest

__all__ = [
    "DEFAULT_HOPS",
    "HopLimitExceeded",
    "add_server_timing",
    "check_hops",
    "forward_hops",
    "incoming_hops",
    "server_timing_entry",
]

DEFAULT_HOPS = HopConfig()
_MAX_HEADER_HOPS = 1000  # anything bigger is not a count a sidecar wrote


def incoming_hops(headers: Mapping[str, str], config: HopConfig = DEFAULT_HOPS) -> int:
    """How many sidecars the request passed before this one (0 without the header).

    ``headers`` has lower-case names. A value that is not a small non-negative integer is a 400:
    ignoring it would let a loop through.
    """
    value = headers.get(config.header)
    if value is None:
        return 0
    text = value.strip()
    if not text.isdigit() or int(text) > _MAX_HEADER_HOPS:
        raise InvalidRequest(f"{config.header}: must be a non-negative integer, got {value!r}")
    return int(text)


def check_hops(headers: Mapping[str, str], config: HopConfig = DEFAULT_HOPS) -> int:
    """The incoming hop count; raises ``HopLimitExceeded`` when it reached ``max_hops``."""
    hops = incoming_hops(headers, config)
    if hops >= config.max_hops:
        raise HopLimitExceeded(
            f"this request already passed {hops} sidecars (limit {config.max_hops}); "
            "the routes likely form a loop",
            headers=[("x-should-retry", "false")],
        )
    return hops


def forward_hops(headers: dict[str, str], hops: int, config: HopConfig = DEFAULT_HOPS) -> None:
    """Set the hop header of an upstream request to ``hops + 1`` (this sidecar counted in)."""
    headers[config.header] = str(hops + 1)


def server_timing_entry(hop: int, overhead: float, name: str = "") -> str:
    """One ``server-timing`` entry: hop number ``hop`` (1 = outermost) spent ``overhead`` s."""
    entry = f"sidecar-{hop};dur={max(overhead, 0.0) * 1000:.1f}"
    if name:
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        entry += f';desc="{escaped}"'
    return entry


def add_server_timing(headers: list[tuple[str, str]], entry: str) -> None:
    """Put ``entry`` in front of the response's ``server-timing`` (merging every such header)."""
    for key, _ in headers:
        if key.lower() == "server-timing":
            break
    else:  # the usual case: none yet
        headers.append(("server-timing", entry))
        return
    existing = [v for k, v in headers if k.lower() == "server-timing"]
    headers[:] = [(k, v) for k, v in headers if k.lower() != "server-timing"]
    headers.append(("server-timing", ", ".join([entry, *existing])))
