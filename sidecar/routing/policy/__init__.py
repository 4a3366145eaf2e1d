"""Routing policies: weighted targets, fallbacks, retries, stream holds, breakers, sidecar chains.

The core hands a call to ``execute(call, plan, send_attempt)`` with a ``RoutePlan`` built once
per route from its ``RoutePolicyConfig``; ``send_attempt(target)`` is the core's one-attempt
function (adapter + telemetry), so nothing here imports an adapter. Every wait goes through a
``Clock`` (``FakeClock`` in tests). See each module's docstring for its state machine.
"""

from __future__ import annotations

from .backoff import Backoff, parse_retry_after
from .balancer import WeightedBalancer
from .breaker import BreakerState, CircuitBreaker
from .budget import RetryBudget
from .clock import Clock, FakeClock, SystemClock, wait_within
from .config import (
    DEFAULT_RETRY_STATUSES,
    BreakerConfig,
    BudgetConfig,
    HopConfig,
    RetryConfig,
    RoutePolicyConfig,
    TargetGroup,
    TimeoutConfig,
    WeightedTarget,
)
from .executor import (
    ATTEMPTS_HEADER,
    UPSTREAM_HEADER,
    AttemptRecord,
    PlannedTarget,
    RoutedCall,
    RoutePlan,
    SendAttempt,
    execute,
    routing_headers,
)
from .hold import HoldResult, error_from_event, hold
from .hops import (
    DEFAULT_HOPS,
    HopLimitExceeded,
    add_server_timing,
    check_hops,
    forward_hops,
    incoming_hops,
    server_timing_entry,
)

__all__ = [
    "ATTEMPTS_HEADER",
    "DEFAULT_HOPS",
    "DEFAULT_RETRY_STATUSES",
    "UPSTREAM_HEADER",
    "AttemptRecord",
    "Backoff",
    "BreakerConfig",
    "BreakerState",
    "BudgetConfig",
    "CircuitBreaker",
    "Clock",
    "FakeClock",
    "HoldResult",
    "HopConfig",
    "HopLimitExceeded",
    "PlannedTarget",
    "RetryBudget",
    "RetryConfig",
    "RoutePlan",
    "RoutePolicyConfig",
    "RoutedCall",
    "SendAttempt",
    "SystemClock",
    "TargetGroup",
    "TimeoutConfig",
    "WeightedBalancer",
    "WeightedTarget",
    "add_server_timing",
    "check_hops",
    "error_from_event",
    "execute",
    "forward_hops",
    "hold",
    "incoming_hops",
    "parse_retry_after",
    "routing_headers",
    "server_timing_entry",
    "wait_within",
]
