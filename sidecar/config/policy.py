"""Typed configuration of a route's resilience policy: frozen structs, defaults documented.

Decoded like the rest of ``sidecar.config`` (msgspec, unknown keys are errors). Every cross-field
rule is checked in ``__post_init__``, so a bad policy fails at load time (msgspec reports the
``ValueError`` as a validation error naming the struct) and requests only read it.

A route's policy in YAML (the section name is the wiring step's choice)::

    groups:                      # tried in order; groups after the first are fallbacks
      - targets:
          - {upstream: anthropic, weight: 3}
          - {upstream: anthropic-eu, weight: 1}
      - targets:
          - {upstream: bedrock, model: anthropic.claude-sonnet-4-6}
    fallback_on: [529]           # these statuses jump to the next group at once
    retry: {max_attempts: 2, base_backoff: 0.5, max_backoff: 8}
    hold_limit: 10
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "BreakerConfig",
    "BudgetConfig",
    "HopConfig",
    "RetryConfig",
    "RoutePolicyConfig",
    "TargetGroup",
    "TimeoutConfig",
    "WeightedTarget",
]

# What the SDKs themselves retry (spec section 6), 529 included.
DEFAULT_RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504, 529)


class _Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


def _positive(name: str, value: float | None, *, zero: bool = False) -> None:
    if value is None:
        return
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name}: must be {'>= 0' if zero else '> 0'}, got {value!r}")


def _statuses(name: str, values: tuple[int, ...]) -> None:
    for status in values:
        if not 100 <= status <= 599:
            raise ValueError(f"{name}: {status} is not an HTTP status")


class WeightedTarget(_Base, frozen=True):
    """One upstream in a group, optionally asking it for another model name."""

    upstream: str  # a name under `upstreams`
    model: str | None = None  # the model name to ask for (default: the requested one, after aliases)
    weight: int = 1  # relative share of the group's traffic (>= 1)

    def __post_init__(self) -> None:
        if not self.upstream:
            raise ValueError("upstream: must not be empty")
        if self.weight < 1:
            raise ValueError(f"weight: must be >= 1, got {self.weight}")


class TargetGroup(_Base, frozen=True):
    """Targets sharing traffic by weight; the balancer skips those whose breaker is open."""

    targets: list[WeightedTarget]

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("targets: a group needs at least one target")
        seen: set[tuple[str, str | None]] = set()
        for target in self.targets:
            key = (target.upstream, target.model)
            if key in seen:
                raise ValueError(f"targets: {target.upstream!r} (model {target.model!r}) is listed twice")
            seen.add(key)


class RetryConfig(_Base, frozen=True):
    """When and how long to wait before trying again (spec section 6 semantics)."""

    # Attempts on one group (first try included) before its fallback group is taken; retries
    # prefer a target of the group not tried yet. 1: no retry inside a group.
    max_attempts: int = 2
    base_backoff: float = 0.5  # seconds before the first retry; doubles per retry (SDK: 0.5)
    max_backoff: float = 8.0  # cap of the exponential wait (SDK: 8)
    # The wait is multiplied by a uniform factor in [1 - jitter, 1] (SDK: 0.25 -> [0.75, 1]).
    jitter: float = 0.25
    retry_on: tuple[int, ...] = DEFAULT_RETRY_STATUSES  # statuses (and in-band error types' statuses)
    retry_connect_errors: bool = True  # refused/reset connections and timeouts before an answer
    honour_retry_after: bool = True  # wait what `retry-after-ms` / `retry-after` ask ...
    # ... up to this many seconds; a longer ask is not waited here: the next target or group is
    # tried, or the error (with its retry-after) goes back to the client.
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {self.max_attempts}")
        _positive("base_backoff", self.base_backoff, zero=True)
        _positive("max_backoff", self.max_backoff, zero=True)
        _positive("max_retry_after", self.max_retry_after, zero=True)
        if self.base_backoff > self.max_backoff:
            raise ValueError(f"base_backoff: {self.base_backoff} is above max_backoff ({self.max_backoff})")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter: must be within [0, 1], got {self.jitter}")
        _statuses("retry_on", self.retry_on)


class BudgetConfig(_Base, frozen=True):
    """Caps on retries, so a failing upstream does not get a retry storm on top of its load."""

    # Attempts after the first, per request, fallbacks included. 0: never retry nor fall back.
    max_retries_per_request: int = 2
    # Retries may add at most this share of the requests seen over `window` seconds ...
    ratio: float = 0.2
    min_retries: int = 10  # ... plus this many per window, so light traffic can still retry
    window: float = 10.0

    def __post_init__(self) -> None:
        if self.max_retries_per_request < 0:
            raise ValueError(f"max_retries_per_request: must be >= 0, got {self.max_retries_per_request}")
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError(f"ratio: must be within [0, 1], got {self.ratio}")
        if self.min_retries < 0:
            raise ValueError(f"min_retries: must be >= 0, got {self.min_retries}")
        _positive("window", self.window)


class TimeoutConfig(_Base, frozen=True):
    """Per attempt, in seconds; None: no limit here. The client's deadline caps them all."""

    # Opening a connection (pool wait, proxy and TLS included): carried by `Target.connect_timeout`
    # and applied by the adapter. None: the upstream's `timeouts.connect`.
    connect: float | None = None
    # From sending the request to the answer's headers (a whole JSON answer when not streaming).
    first_byte: float | None = None
    idle: float | None = None  # longest gap between two stream events
    total: float | None = None  # one attempt, start to last event

    def __post_init__(self) -> None:
        for name in ("connect", "first_byte", "idle", "total"):
            _positive(name, getattr(self, name))
        if self.total is not None:
            for name in ("connect", "first_byte"):
                value = getattr(self, name)
                if value is not None and value > self.total:
                    raise ValueError(f"{name}: {value} is above total ({self.total})")


class BreakerConfig(_Base, frozen=True):
    """Per target: open after consecutive failures or a failure rate, half-open after a cooldown.

    Failures are the upstream's faults: connect errors, timeouts, 5xx and 529 answers, in-band
    errors and broken streams (429 too when ``count_rate_limits``); 4xx answers are successes.
    """

    enabled: bool = True
    consecutive_failures: int = 5  # open after this many failures in a row (0: off)
    failure_rate: float = 0.5  # open when failures / attempts over `window` reach this ...
    min_calls: int = 20  # ... with at least this many attempts in the window (0 calls: rate off)
    window: float = 30.0  # seconds
    cooldown: float = 30.0  # seconds open before probes are let through (half-open)
    half_open_probes: int = 1  # trial calls admitted half-open; all must succeed to close
    count_rate_limits: bool = False  # a 429 counts as a failure
    shadow: bool = False  # track and report states, but never skip a target

    def __post_init__(self) -> None:
        if self.consecutive_failures < 0:
            raise ValueError(f"consecutive_failures: must be >= 0, got {self.consecutive_failures}")
        if not 0.0 < self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate: must be within (0, 1], got {self.failure_rate}")
        if self.min_calls < 0:
            raise ValueError(f"min_calls: must be >= 0, got {self.min_calls}")
        _positive("window", self.window)
        _positive("cooldown", self.cooldown)
        if self.half_open_probes < 1:
            raise ValueError(f"half_open_probes: must be >= 1, got {self.half_open_probes}")


class RoutePolicyConfig(_Base, frozen=True):
    """The resilience policy of one route: where it may go and how hard it tries."""

    groups: list[TargetGroup]
    balance: Literal["round_robin", "random"] = "round_robin"  # smooth weighted RR, or weighted random
    # Failures with these statuses leave the group at once for the next one (e.g. 529 -> another
    # provider); the last group's failures go back to the client.
    fallback_on: tuple[int, ...] = (529,)
    retry: RetryConfig = RetryConfig()
    budget: BudgetConfig = BudgetConfig()
    timeouts: TimeoutConfig = TimeoutConfig()
    breaker: BreakerConfig = BreakerConfig()
    # Seconds a stream's first events are held back (so a failure before the first content delta
    # can be retried invisibly); past it the stream is committed to the client. 0: never hold.
    hold_limit: float = 10.0

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("groups: a route needs at least one target group")
        _statuses("fallback_on", self.fallback_on)
        _positive("hold_limit", self.hold_limit, zero=True)

    def upstream_names(self) -> list[str]:
        """Every upstream the policy may call, in first-mention order (for load-time checks)."""
        seen: dict[str, None] = {}
        for group in self.groups:
            for target in group.targets:
                seen.setdefault(target.upstream, None)
        return list(seen)


class HopConfig(_Base, frozen=True):
    """Sidecar chains: each sidecar counts itself into a request header and refuses loops."""

    header: str = "sidecar-hops"  # lower-case request header carrying the count
    max_hops: int = 8  # a request that already passed this many sidecars is refused (508)
    server_timing: bool = True  # add this hop's overhead to the `server-timing` response header

    def __post_init__(self) -> None:
        if self.max_hops < 1:
            raise ValueError(f"max_hops: must be >= 1, got {self.max_hops}")
        if not self.header or self.header != self.header.lower():
            raise ValueError(f"header: must be a non-empty lower-case name, got {self.header!r}")
