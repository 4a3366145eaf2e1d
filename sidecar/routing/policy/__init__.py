"""Routing policies: weighted targets, fallbacks, retries, stream holds, breakers.

The pipeline hands a call to ``execute(call, plan, send_attempt)`` with a ``RoutePlan`` built
once per route from its ``RoutePolicyConfig``; ``send_attempt(target)`` is the pipeline's
one-attempt function (the upstream's filter chain and adapter), so nothing here imports an
adapter. Every wait goes through a ``sidecar.core.clock.Clock`` (``FakeClock`` in tests); the
policies' typed config is ``sidecar.config.policy``. See each module's docstring for its state
machine.
"""

from __future__ import annotations

from .backoff import Backoff, parse_retry_after
from .balancer import WeightedBalancer
from .breaker import BreakerState, CircuitBreaker
from .budget import RetryBudget
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
from .hold import HoldResult, hold

__all__ = [
    "ATTEMPTS_HEADER",
    "UPSTREAM_HEADER",
    "AttemptRecord",
    "Backoff",
    "BreakerState",
    "CircuitBreaker",
    "HoldResult",
    "PlannedTarget",
    "RetryBudget",
    "RoutePlan",
    "RoutedCall",
    "SendAttempt",
    "WeightedBalancer",
    "execute",
    "hold",
    "parse_retry_after",
    "routing_headers",
]
