"""``MemoryLimiter``: the limits kept in this process, each replica enforcing them on its own.

It owns the per-key state (a ``tat`` per rate dimension, the limit it was counted against, the
set of concurrency leases) and wakes a key's waiters when a release or a refund makes room.
Every call is synchronous inside, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass, field

from ...config.admission import Limits
from ...core.clock import Clock, wait_within
from .base import (
    CONCURRENCY_RETRY_AFTER,
    EPS,
    Grant,
    Limiter,
    LimitState,
    Refusal,
    rate_costs,
    rate_message,
    too_large,
)

__all__ = ["MemoryLimiter"]


@dataclass(slots=True)
class _KeyState:
    tats: dict[str, float] = field(default_factory=dict)  # monotonic seconds
    # The limit each tat was counted against: a changed limit (a reload) rescales the debt, so
    # the units already used count against the new limit at once.
    limits: dict[str, int] = field(default_factory=dict)
    leases: set[str] = field(default_factory=set)
    changed: asyncio.Future[None] | None = None  # woken on release and refunds


class MemoryLimiter(Limiter):
    """Limits kept in this process (each replica on its own). Every call is synchronous inside."""

    def __init__(
        self,
        *,
        period: float = 60.0,
        max_wait: float = 0.0,
        max_waiting: int = 64,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(period=period, max_wait=max_wait, max_waiting=max_waiting, clock=clock)
        self._keys: dict[str, _KeyState] = {}
        self._ids = itertools.count(1)

    def in_flight(self, key: str) -> int:
        """Leases ``key`` holds now."""
        state = self._keys.get(key)
        return len(state.leases) if state else 0

    @staticmethod
    def _base(state: _KeyState, dim: str, limit: int, now: float) -> float:
        """``max(tat, now)`` of ``dim``, its debt rescaled to ``limit`` if it was counted against
        another one."""
        tat = state.tats.get(dim)
        if tat is None:
            return now
        seen = state.limits.get(dim)
        if seen is not None and seen != limit:
            if tat > now:
                tat = state.tats[dim] = now + (tat - now) * seen / limit
            state.limits[dim] = limit
        return max(tat, now)

    def _states(self, state: _KeyState, limits: Limits, now: float) -> dict[str, LimitState]:
        wall = self.clock.time()
        out = {}
        for dim, limit, _ in rate_costs(limits, 0):
            interval = self.period / limit
            base = self._base(state, dim, limit, now)
            remaining = math.floor((now + self.period - base) / interval + 1e-9)
            out[dim] = LimitState(limit, max(0, min(limit, remaining)), wall + (base - now))
        return out

    async def _try(self, key: str, limits: Limits, input_tokens: int) -> Grant | Refusal:
        state = self._keys.setdefault(key, _KeyState())
        now = self.clock.monotonic()
        new_tats: dict[str, float] = {}
        refused: str | None = None
        retry = 0.0
        for dim, limit, cost in rate_costs(limits, input_tokens):
            need = max(cost, 1)
            if need > limit:
                return too_large(key, dim, limit, need)
            interval = self.period / limit
            base = self._base(state, dim, limit, now)
            allow_at = base + need * interval - self.period
            if allow_at > now + EPS:
                if allow_at - now > retry:
                    refused, retry = dim, allow_at - now
            elif cost:
                new_tats[dim] = base + cost * interval
        if refused is None and limits.concurrency is not None and len(state.leases) >= limits.concurrency:
            refused, retry = "concurrency", CONCURRENCY_RETRY_AFTER
        if refused is not None:
            return Refusal(
                key=key,
                reason=refused,
                message=rate_message(refused),
                retry_after=retry,
                states=self._states(state, limits, now),
            )
        state.tats.update(new_tats)
        for dim, limit, _ in rate_costs(limits, input_tokens):
            if dim in new_tats:
                state.limits[dim] = limit
        lease = f"m{next(self._ids)}"
        state.leases.add(lease)
        return Grant(
            key=key,
            limits=limits,
            lease=lease,
            states=self._states(state, limits, now),
            input_charged=input_tokens,
        )

    async def _pause(self, key: str, seconds: float) -> None:
        state = self._keys.setdefault(key, _KeyState())
        if state.changed is None or state.changed.done():
            state.changed = asyncio.get_running_loop().create_future()
        await wait_within(self.clock, state.changed, seconds)

    def _wake(self, state: _KeyState) -> None:
        if state.changed is not None and not state.changed.done():
            state.changed.set_result(None)
        state.changed = None

    async def _adjust(self, grant: Grant, input_delta: int, output_delta: int, *, release: bool) -> None:
        state = self._keys.setdefault(grant.key, _KeyState())
        now = self.clock.monotonic()
        deltas = {
            "input_tokens": input_delta,
            "output_tokens": output_delta,
            "tokens": input_delta + output_delta,
        }
        refund = False
        for dim, limit, _ in rate_costs(grant.limits, 0):
            delta = deltas.get(dim, 0)
            if not delta:
                continue
            base = self._base(state, dim, limit, now)
            state.tats[dim] = max(base + delta * self.period / limit, now)
            state.limits[dim] = limit
            refund = refund or delta < 0
        if release:
            state.leases.discard(grant.lease)
        if release or refund:
            self._wake(state)
