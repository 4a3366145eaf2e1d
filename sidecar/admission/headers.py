"""The rate-limit response headers of admission, and hiding the upstream's own under a prefix.

When admission is on, every response carries the real API's
``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``
headers (spec section 6), describing the sidecar's limits for the caller's key: ``reset`` is an
RFC 3339 UTC time (``2026-05-01T12:00:03Z``) at which that bucket is full again. Only the
dimensions the key is limited in appear. ``tokens-*`` describe the combined limit when the key
has one, else the more restrictive of the input and output limits (the fewest remaining), as the
real API does. A refusal adds ``retry-after`` (whole seconds, at least 1) and, when waiting can
never help, ``x-should-retry: false``.

The upstream's own ``anthropic-ratelimit-*`` and ``anthropic-priority-*`` headers describe the
sidecar's organisation-level budget, not the client's: ``rename_upstream_headers`` moves them
under ``upstream-`` so the sidecar's own take their place and the upstream's stay visible.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from .limiter import Grant, LimitState, Refusal

__all__ = [
    "UPSTREAM_PREFIX",
    "grant_headers",
    "ratelimit_headers",
    "refusal_headers",
    "rename_upstream_headers",
    "retry_after_seconds",
    "rfc3339",
]

UPSTREAM_PREFIX = "upstream-"
_RENAMED = ("anthropic-ratelimit-", "anthropic-priority-")
_NAMES = {
    "requests": "requests",
    "tokens": "tokens",
    "input_tokens": "input-tokens",
    "output_tokens": "output-tokens",
}


def rfc3339(epoch: float) -> str:
    """``epoch`` seconds as an RFC 3339 UTC time to the second, rounded up (``...T12:00:03Z``)."""
    return _second(math.ceil(epoch - 1e-6))


@functools.lru_cache(maxsize=1024)
def _second(second: int) -> str:
    # Every response formats a few of these, mostly the same seconds: strftime was the largest
    # single cost of in-memory admission in the bench's profile.
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ratelimit_headers(states: Mapping[str, LimitState]) -> list[tuple[str, str]]:
    """The ``anthropic-ratelimit-*`` headers of ``states`` (dimension -> state), in a fixed order:
    requests, tokens, input-tokens, output-tokens; each limit, remaining, reset."""
    chosen = dict(states)
    if "tokens" not in chosen:
        parts = [chosen[d] for d in ("input_tokens", "output_tokens") if d in chosen]
        if parts:
            chosen["tokens"] = min(parts, key=lambda s: (s.remaining, -s.reset))
    out: list[tuple[str, str]] = []
    for dim in ("requests", "tokens", "input_tokens", "output_tokens"):
        state = chosen.get(dim)
        if state is None:
            continue
        name = f"anthropic-ratelimit-{_NAMES[dim]}"
        out.append((f"{name}-limit", str(state.limit)))
        out.append((f"{name}-remaining", str(max(state.remaining, 0))))
        out.append((f"{name}-reset", rfc3339(state.reset)))
    return out


def grant_headers(grant: Grant) -> list[tuple[str, str]]:
    """The headers of an admitted request (none when the backend was down and it was let in)."""
    return ratelimit_headers(grant.states)


def retry_after_seconds(refusal: Refusal) -> int:
    """``retry-after`` of a refusal: its wait rounded up to whole seconds, at least 1."""
    return max(1, math.ceil(refusal.retry_after - 1e-6))


def refusal_headers(refusal: Refusal) -> list[tuple[str, str]]:
    """The headers of a 429: ``retry-after``, ``x-should-retry: false`` when retrying cannot
    help (a cost above the limit itself), and the rate-limit headers."""
    out = [("retry-after", str(retry_after_seconds(refusal)))]
    if not refusal.retryable and refusal.reason != "unavailable":
        out.append(("x-should-retry", "false"))
    out.extend(ratelimit_headers(refusal.states))
    return out


def rename_upstream_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with every ``anthropic-ratelimit-*`` / ``anthropic-priority-*`` header renamed
    ``upstream-anthropic-...`` (names lower-cased); every other header unchanged, order kept."""
    out: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower.startswith(_RENAMED):
            out.append((UPSTREAM_PREFIX + lower, value))
        else:
            out.append((name, value))
    return out
