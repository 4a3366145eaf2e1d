"""Per-key rate and concurrency limiters: one interface, in-process and Redis implementations.

- ``base``: the interface the gate calls (``Limiter``: the per-key queue, charges, releases), what
  it hands out (``Grant``, ``Refusal``, ``LimitState``, ``Usage``) and the GCRA arithmetic's rules.
- ``memory``: ``MemoryLimiter``, limits kept in this process.
- ``redis``: ``RedisLimiter``, limits shared through Redis by Lua scripts (the ``.lua`` files here).

This module is the public face (the names above) and ``build_limiter``, which picks the backend
the config names.
"""

from __future__ import annotations

from typing import Any

from ...config.admission import AdmissionConfig, RedisBackend
from ...core.clock import Clock
from .base import DIMENSIONS, Grant, Limiter, LimitState, Refusal, Usage
from .memory import MemoryLimiter
from .redis import RedisLimiter

__all__ = [
    "DIMENSIONS",
    "Grant",
    "Limiter",
    "LimitState",
    "MemoryLimiter",
    "RedisLimiter",
    "Refusal",
    "Usage",
    "build_limiter",
]


def build_limiter(config: AdmissionConfig, *, clock: Clock | None = None) -> Limiter:
    """The limiter ``config.backend`` names, with the queue and period of ``config``."""
    common: dict[str, Any] = {
        "period": config.period,
        "max_wait": config.queue.max_wait,
        "max_waiting": config.queue.max_waiting,
        "clock": clock,
    }
    backend = config.backend
    if isinstance(backend, RedisBackend):
        return RedisLimiter.from_url(
            backend.url,
            timeout=backend.timeout,
            fail_open=backend.fail_open,
            key_prefix=backend.key_prefix,
            lease_ttl=backend.lease_ttl,
            charge_batch=backend.charge_batch,
            poll_interval=backend.poll_interval,
            **common,
        )
    return MemoryLimiter(**common)
