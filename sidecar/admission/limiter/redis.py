"""``RedisLimiter``: the limits shared by every replica through one Redis.

It keeps the same state as the memory limiter in Redis (a hash of ``tat`` per key and a sorted
set of leases with expiry times) and changes it with two Lua scripts beside this module,
``acquire.lua`` and ``adjust.lua`` (both with ``rescaled_tat.lua`` spliced in), read once at
import: one call per admission, per charge batch and per release, on Redis's own clock
(``TIME``) so replicas' clocks do not matter. When Redis cannot answer within ``timeout`` the
limiter admits (``fail_open``) or refuses, never waits longer, counts it (``unavailable_total``,
``unavailable``) and logs once per outage.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import Any

from ...config.admission import Limits
from ...core.clock import Clock
from ..resp import RespClient, Script
from .base import (
    CONCURRENCY_RETRY_AFTER,
    DIMENSIONS,
    Grant,
    Limiter,
    LimitState,
    Refusal,
    rate_costs,
    rate_message,
    too_large,
)

__all__ = ["RedisLimiter"]

log = logging.getLogger("sidecar.admission")


def _lua(name: str) -> str:
    return Path(__file__).with_name(name).read_text(encoding="utf-8")


def _script(name: str) -> str:
    """A script beside this module, ``rescaled_tat.lua`` (a dimension's ``tat``, its debt rescaled
    to a changed limit) spliced in at its ``-- RESCALED_TAT`` line."""
    return _lua(name).replace("    -- RESCALED_TAT\n", _RESCALED_TAT)


_RESCALED_TAT = _lua("rescaled_tat.lua")
_ACQUIRE = _script("acquire.lua")
_ADJUST = _script("adjust.lua")


class RedisLimiter(Limiter):
    """Limits shared by every replica that points at the same Redis and ``key_prefix``.

    ``client`` is a ``RespClient`` (``sidecar.admission.resp``: one pipelined connection). Each
    script call, connecting included, is bounded by ``timeout``.
    """

    def __init__(
        self,
        client: RespClient,
        *,
        period: float = 60.0,
        fail_open: bool = True,
        timeout: float = 0.25,
        key_prefix: str = "sidecar:admission:",
        lease_ttl: float = 900.0,
        charge_batch: int = 64,
        poll_interval: float = 0.05,
        max_wait: float = 0.0,
        max_waiting: int = 64,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(period=period, max_wait=max_wait, max_waiting=max_waiting, clock=clock)
        self.client = client
        self.fail_open = fail_open
        self.timeout = timeout
        self.key_prefix = key_prefix
        self.lease_ttl = lease_ttl
        self.charge_batch = charge_batch
        self.poll_interval = poll_interval
        self.unavailable = False  # the last call failed (a gauge)
        self.unavailable_total = 0  # calls that failed or timed out (a counter)
        self._acquire_script = Script(_ACQUIRE)
        self._adjust_script = Script(_ADJUST)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 0.25, **kwargs: Any) -> RedisLimiter:
        """A limiter on a new client for ``url`` (connected on first use), ``timeout`` per call."""
        return cls(RespClient(url), timeout=timeout, **kwargs)

    async def close(self) -> None:
        await self.client.aclose()

    def _keys(self, key: str) -> list[str]:
        # The hash tag keeps a key's two Redis keys in one slot (Redis Cluster).
        return [f"{self.key_prefix}{{{key}}}:tat", f"{self.key_prefix}{{{key}}}:leases"]

    async def _call(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """Run a script within ``timeout``; None (counted, logged once) when Redis cannot."""
        try:
            async with asyncio.timeout(self.timeout):
                result = await self.client.evalsha(script, keys, args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # error replies, OSError, TimeoutError: all mean "unavailable"
            self.unavailable_total += 1
            if not self.unavailable:
                self.unavailable = True
                mode = "admitting without limits" if self.fail_open else "refusing requests"
                log.warning(
                    "admission: Redis unreachable (%s); %s until it answers", type(exc).__name__, mode
                )
            return None
        if self.unavailable:
            self.unavailable = False
            log.warning("admission: Redis answers again; limits are enforced")
        return result

    async def _try(self, key: str, limits: Limits, input_tokens: int) -> Grant | Refusal:
        costs = {dim: (limit, cost) for dim, limit, cost in rate_costs(limits, input_tokens)}
        args: list[Any] = [repr(self.period), "", repr(self.lease_ttl), limits.concurrency or 0]
        for dim in DIMENSIONS:
            limit, cost = costs.get(dim, (0, 0))
            args += [limit, cost]
        args.append(repr(CONCURRENCY_RETRY_AFTER))
        lease = secrets.token_hex(8)
        args[1] = lease
        result = await self._call(self._acquire_script, self._keys(key), args)
        if result is None:
            if self.fail_open:
                return Grant(key=key, limits=limits, lease=lease, states={}, input_charged=0, degraded=True)
            return Refusal(
                key=key,
                reason="unavailable",
                message="rate limits cannot be checked right now; retry shortly",
                retry_after=1.0,
                retryable=False,
            )
        ok, reason, retry = str(result[0]), str(result[1]), float(result[2])
        if reason.startswith("too_large:"):
            dim = reason.partition(":")[2]
            limit, cost = costs[dim]
            return too_large(key, dim, limit, max(cost, 1))
        states: dict[str, LimitState] = {}
        for i, dim in enumerate(DIMENSIONS):
            limit_s, remaining_s, reset_s = result[3 + 3 * i : 6 + 3 * i]
            if int(limit_s) > 0:
                states[dim] = LimitState(int(limit_s), int(remaining_s), float(reset_s))
        if ok == "1":
            return Grant(key=key, limits=limits, lease=lease, states=states, input_charged=input_tokens)
        return Refusal(key=key, reason=reason, message=rate_message(reason), retry_after=retry, states=states)

    async def _pause(self, key: str, seconds: float) -> None:
        await self.clock.sleep(min(seconds, self.poll_interval) if seconds > 0 else 0)

    async def _adjust(self, grant: Grant, input_delta: int, output_delta: int, *, release: bool) -> None:
        deltas = {
            "input_tokens": input_delta,
            "output_tokens": output_delta,
            "tokens": input_delta + output_delta,
        }
        limits = {dim: limit for dim, limit, _ in rate_costs(grant.limits, 0)}
        args: list[Any] = [repr(self.period), grant.lease, repr(self.lease_ttl), "1" if release else "0"]
        for dim in DIMENSIONS:
            args += [limits.get(dim, 0), deltas.get(dim, 0) if dim in limits else 0]
        await self._call(self._adjust_script, self._keys(grant.key), args)
