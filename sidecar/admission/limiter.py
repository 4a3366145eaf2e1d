"""Per-key rate and concurrency limiters: one interface, in-process and Redis implementations.

Rates use GCRA (the generic cell rate algorithm: a token bucket kept as one number per
dimension, its "theoretical arrival time" ``tat``). A limit of ``L`` per ``period`` seconds
refills one unit every ``T = period / L`` seconds into a bucket of ``L``; a cost ``c`` fits when
``max(tat, now) + c*T - period <= now``, and charging it moves ``tat`` on by ``c*T``. So:

- ``remaining`` = ``floor((now + period - max(tat, now)) / T)`` (``L`` when idle), and
- ``reset`` (the time the bucket is full again) = ``max(tat, now)``, wall clock.

Four rate dimensions, each optional (``Limits``): ``requests`` (cost 1), ``input_tokens`` (the
input estimate), ``output_tokens`` (nothing at admission, but the bucket must not be empty) and
``tokens`` (input and output together). Output tokens are charged as they stream
(``charge``) and may put a bucket in debt (a stream is never cut); ``release`` reconciles the
admission estimate and the streamed charges with the upstream's real usage (refunds included)
and frees the request's concurrency slot. A cost above a limit can never fit: refused at once
(``Refusal.retryable`` false). Concurrency is a count of leases per key.

A request that does not fit waits in a bounded per-key queue (``max_waiting`` per replica) for at
most ``max_wait`` seconds: for a rate, exactly until it would fit (refused at once when that is
later than ``max_wait``); for concurrency, until a slot frees or ``max_wait`` passes. Waiters are
not strictly FIFO: a new arrival that fits goes first.

``RedisLimiter`` keeps the same state in Redis (a hash of ``tat`` per key and a sorted set of
leases with expiry times) and changes it with two Lua scripts, one call per admission, per
charge batch and per release, on Redis's own clock (``TIME``) so replicas' clocks do not matter.
When Redis cannot answer within ``timeout`` the limiter admits (``fail_open``) or refuses, never
waits longer, counts it (``unavailable_total``, ``unavailable``) and logs once per outage.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..config.admission import AdmissionConfig, Limits, RedisBackend
from ..core.clock import Clock, SystemClock, wait_within
from .resp import RespClient, Script

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

log = logging.getLogger("sidecar.admission")

# Rate dimensions, in the order of the Redis scripts' arguments.
DIMENSIONS = ("requests", "input_tokens", "output_tokens", "tokens")
_LIMIT_OF = {
    "requests": "requests_per_minute",
    "input_tokens": "input_tokens_per_minute",
    "output_tokens": "output_tokens_per_minute",
    "tokens": "tokens_per_minute",
}
_EPS = 1e-6  # seconds of float slack in GCRA comparisons
CONCURRENCY_RETRY_AFTER = 1.0  # seconds suggested to a request refused for concurrency


@dataclass(frozen=True, slots=True)
class LimitState:
    """One dimension of a key's limits as a response header describes it."""

    limit: int
    remaining: int
    reset: float  # wall-clock epoch seconds at which the bucket is full again


@dataclass(frozen=True, slots=True)
class Usage:
    """What a finished request really used, as the limits count it."""

    input_tokens: int  # input_tokens + cache_creation_input_tokens (cache reads are free)
    output_tokens: int


@dataclass(slots=True)
class Grant:
    """An admitted request: its concurrency lease and what has been charged so far."""

    key: str
    limits: Limits
    lease: str
    states: dict[str, LimitState]  # at admission, per limited rate dimension
    input_charged: int  # the input estimate charged at admission (until release reconciles)
    output_charged: int = 0  # output tokens charged so far
    waited: float = 0.0  # seconds spent in the queue
    degraded: bool = False  # admitted without a check: the backend was unreachable (fail-open)
    released: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request that did not fit. ``retry_after`` is when it would (a hint for concurrency)."""

    key: str
    reason: str  # a DIMENSIONS name, "concurrency", or "unavailable" (backend down, fail-closed)
    message: str
    retry_after: float  # seconds
    retryable: bool = True  # false: the cost exceeds the limit itself, or the backend is down
    states: dict[str, LimitState] = field(default_factory=dict)
    waited: float = 0.0


def _costs(limits: Limits, input_tokens: int) -> list[tuple[str, int, int]]:
    """(dimension, limit, cost at admission) of the limited rate dimensions."""
    costs = {"requests": 1, "input_tokens": input_tokens, "output_tokens": 0, "tokens": input_tokens}
    out = []
    for dim in DIMENSIONS:
        limit = getattr(limits, _LIMIT_OF[dim])
        if limit is not None:
            out.append((dim, int(limit), costs[dim]))
    return out


def _too_large(key: str, dim: str, limit: int, cost: int) -> Refusal:
    unit = "tokens" if dim != "requests" else "requests"
    return Refusal(
        key=key,
        reason=dim,
        message=f"this request's estimated {dim.replace('_', ' ')} ({cost} {unit}) exceed the key's "
        f"limit of {limit} per minute; it can never be admitted",
        retry_after=0.0,
        retryable=False,
    )


def _rate_message(reason: str) -> str:
    if reason == "concurrency":
        return "this API key has too many requests in flight; retry when one finishes"
    return f"this API key is over its {reason.replace('_', ' ')} per minute limit; retry after the retry-after header"


class Limiter:
    """The interface the gate calls; subclasses implement ``_try``, ``_pause`` and ``_adjust``.

    ``acquire`` returns a ``Grant`` or a ``Refusal`` (never raises for a limit); ``charge`` and
    ``release`` never raise either (a backend failure is counted and logged). ``charge_batch`` is
    how many streamed output tokens a caller should gather before calling ``charge``.
    """

    charge_batch = 1

    def __init__(
        self,
        *,
        period: float = 60.0,
        max_wait: float = 0.0,
        max_waiting: int = 64,
        clock: Clock | None = None,
    ) -> None:
        self.period = period
        self.max_wait = max_wait
        self.max_waiting = max_waiting
        self.clock = clock or SystemClock()
        self._waiting: dict[str, int] = {}
        self.users = 0  # Admissions using this limiter (config snapshots across reloads)

    def waiting(self, key: str) -> int:
        """Requests of ``key`` waiting in this process now."""
        return self._waiting.get(key, 0)

    def waiting_by_key(self) -> dict[str, int]:
        """Requests waiting in this process now, per key (for metrics)."""
        return dict(self._waiting)

    async def acquire(
        self, key: str, limits: Limits, input_tokens: int, *, max_wait: float | None = None
    ) -> Grant | Refusal:
        """Admit one request of ``key`` costing ``input_tokens`` (the estimate), waiting up to
        ``max_wait`` seconds (default: the limiter's) in the key's queue when it does not fit."""
        input_tokens = max(int(input_tokens), 0)
        wait = self.max_wait if max_wait is None else max_wait
        start = self.clock.monotonic()
        outcome = await self._try(key, limits, input_tokens)
        if isinstance(outcome, Grant) or not outcome.retryable or wait <= 0:
            return outcome
        if outcome.reason != "concurrency" and outcome.retry_after > wait + _EPS:
            return outcome  # known to be longer than the queue may wait
        if self.waiting(key) >= self.max_waiting:
            return outcome
        self._waiting[key] = self.waiting(key) + 1
        try:
            while True:
                left = start + wait - self.clock.monotonic()
                if left <= 0:
                    break
                if outcome.reason == "concurrency":
                    pause = left
                elif outcome.retry_after > left + _EPS:
                    break
                else:
                    pause = min(outcome.retry_after, left)
                await self._pause(key, pause)
                outcome = await self._try(key, limits, input_tokens)
                if isinstance(outcome, Grant):
                    outcome.waited = self.clock.monotonic() - start
                    return outcome
                if not outcome.retryable:
                    break
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
        return Refusal(
            key=outcome.key,
            reason=outcome.reason,
            message=outcome.message,
            retry_after=outcome.retry_after,
            retryable=outcome.retryable,
            states=outcome.states,
            waited=self.clock.monotonic() - start,
        )

    async def charge(self, grant: Grant, output_tokens: int) -> None:
        """Charge streamed output tokens to the grant's key now (may leave a bucket in debt)."""
        if output_tokens <= 0 or grant.released or grant.degraded:
            return
        grant.output_charged += output_tokens
        await self._adjust(grant, 0, output_tokens, release=False)

    async def release(self, grant: Grant, usage: Usage | None = None) -> None:
        """Free the grant's concurrency slot; with ``usage``, first correct the input estimate and
        the output charged so far to what the upstream reported. Idempotent."""
        if grant.released:
            return
        grant.released = True
        if grant.degraded:
            return
        input_delta = output_delta = 0
        if usage is not None:
            input_delta = max(usage.input_tokens, 0) - grant.input_charged
            output_delta = max(usage.output_tokens, 0) - grant.output_charged
            grant.input_charged += input_delta
            grant.output_charged += output_delta
        await self._adjust(grant, input_delta, output_delta, release=True)

    async def close(self) -> None:
        """Release backend resources (connections)."""

    async def _try(self, key: str, limits: Limits, input_tokens: int) -> Grant | Refusal:
        raise NotImplementedError

    async def _pause(self, key: str, seconds: float) -> None:
        await self.clock.sleep(seconds)

    async def _adjust(self, grant: Grant, input_delta: int, output_delta: int, *, release: bool) -> None:
        raise NotImplementedError


# --- in process ---------------------------------------------------------------------------


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
        for dim, limit, _ in _costs(limits, 0):
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
        for dim, limit, cost in _costs(limits, input_tokens):
            need = max(cost, 1)
            if need > limit:
                return _too_large(key, dim, limit, need)
            interval = self.period / limit
            base = self._base(state, dim, limit, now)
            allow_at = base + need * interval - self.period
            if allow_at > now + _EPS:
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
                message=_rate_message(refused),
                retry_after=retry,
                states=self._states(state, limits, now),
            )
        state.tats.update(new_tats)
        for dim, limit, _ in _costs(limits, input_tokens):
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
        for dim, limit, _ in _costs(grant.limits, 0):
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


# --- Redis --------------------------------------------------------------------------------

# Lua: ``tat`` of dimension ``i``, its debt rescaled when it was counted against another limit
# (a reload changed it: the units used count against the new limit at once).
_RESCALED_TAT = """\
    local tat = tonumber(redis.call('HGET', KEYS[1], names[i]) or '0')
    local seen = tonumber(redis.call('HGET', KEYS[1], names[i] .. ':limit') or '0')
    if seen > 0 and seen ~= limit and tat > now then
      tat = now + (tat - now) * seen / limit
    end
"""

# KEYS: state hash, leases sorted set. ARGV: period, lease, lease_ttl, concurrency (0: none),
# then (limit, cost) for each of DIMENSIONS (limit 0: none).
# Returns {ok, reason, retry_after, then (limit, remaining, reset) per dimension}; reason "" when
# admitted, "too_large:<dim>" when a cost exceeds its limit. Numbers as strings (Lua -> Redis
# truncates floats).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period = tonumber(ARGV[1])
local names = {'requests', 'input_tokens', 'output_tokens', 'tokens'}
local eps = 0.000001
local refused = ''
local retry = 0
local bases = {}
local newtats = {}
for i = 1, 4 do
  local limit = tonumber(ARGV[3 + 2 * i])
  local cost = tonumber(ARGV[4 + 2 * i])
  if limit > 0 then
    local need = math.max(cost, 1)
    if need > limit then
      return {'0', 'too_large:' .. names[i], '0'}
    end
    local interval = period / limit
    -- RESCALED_TAT
    local base = math.max(tat, now)
    bases[i] = base
    local allow_at = base + need * interval - period
    if allow_at > now + eps then
      if allow_at - now > retry then
        refused = names[i]
        retry = allow_at - now
      end
    elseif cost > 0 then
      newtats[i] = base + cost * interval
    end
  end
end
local concurrency = tonumber(ARGV[4])
if concurrency > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if refused == '' and redis.call('ZCARD', KEYS[2]) >= concurrency then
    refused = 'concurrency'
    retry = tonumber(ARGV[13])
  end
end
local ok = '0'
if refused == '' then
  ok = '1'
  local last = now
  for i, tat in pairs(newtats) do
    redis.call('HSET', KEYS[1], names[i], string.format('%.6f', tat), names[i] .. ':limit', ARGV[3 + 2 * i])
    bases[i] = tat
  end
  for i, base in pairs(bases) do
    if base > last then last = base end
  end
  redis.call('PEXPIRE', KEYS[1], math.ceil((last - now + 1) * 1000))
  if concurrency > 0 then
    local ttl = tonumber(ARGV[3])
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[2])
    redis.call('PEXPIRE', KEYS[2], math.ceil(ttl * 1000) + 1000)
  end
end
local out = {ok, refused, string.format('%.6f', retry)}
for i = 1, 4 do
  local limit = tonumber(ARGV[3 + 2 * i])
  if limit > 0 then
    local interval = period / limit
    local remaining = math.floor((now + period - bases[i]) / interval + 0.000000001)
    remaining = math.max(0, math.min(limit, remaining))
    table.insert(out, string.format('%d', limit))
    table.insert(out, string.format('%d', remaining))
    table.insert(out, string.format('%.6f', bases[i]))
  else
    table.insert(out, '0')
    table.insert(out, '0')
    table.insert(out, '0')
  end
end
return out
""".replace("    -- RESCALED_TAT\n", _RESCALED_TAT)

# KEYS: state hash, leases sorted set. ARGV: period, lease, lease_ttl, release (1/0), then
# (limit, delta) for each of DIMENSIONS (limit 0: none). Deltas may be negative (refunds).
_ADJUST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period = tonumber(ARGV[1])
local names = {'requests', 'input_tokens', 'output_tokens', 'tokens'}
local last = now
for i = 1, 4 do
  local limit = tonumber(ARGV[3 + 2 * i])
  local delta = tonumber(ARGV[4 + 2 * i])
  if limit > 0 then
    -- RESCALED_TAT
    local base = math.max(tat, now)
    if delta ~= 0 then
      base = math.max(base + delta * period / limit, now)
      redis.call('HSET', KEYS[1], names[i], string.format('%.6f', base), names[i] .. ':limit', ARGV[3 + 2 * i])
    end
    if base > last then last = base end
  end
end
if last > now then
  redis.call('PEXPIRE', KEYS[1], math.ceil((last - now + 1) * 1000))
end
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[2])
elseif redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  local ttl = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[2], 'XX', now + ttl, ARGV[2])
  redis.call('PEXPIRE', KEYS[2], math.ceil(ttl * 1000) + 1000)
end
return 1
""".replace("    -- RESCALED_TAT\n", _RESCALED_TAT)


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
        costs = {dim: (limit, cost) for dim, limit, cost in _costs(limits, input_tokens)}
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
            return _too_large(key, dim, limit, max(cost, 1))
        states: dict[str, LimitState] = {}
        for i, dim in enumerate(DIMENSIONS):
            limit_s, remaining_s, reset_s = result[3 + 3 * i : 6 + 3 * i]
            if int(limit_s) > 0:
                states[dim] = LimitState(int(limit_s), int(remaining_s), float(reset_s))
        if ok == "1":
            return Grant(key=key, limits=limits, lease=lease, states=states, input_charged=input_tokens)
        return Refusal(
            key=key, reason=reason, message=_rate_message(reason), retry_after=retry, states=states
        )

    async def _pause(self, key: str, seconds: float) -> None:
        await self.clock.sleep(min(seconds, self.poll_interval) if seconds > 0 else 0)

    async def _adjust(self, grant: Grant, input_delta: int, output_delta: int, *, release: bool) -> None:
        deltas = {
            "input_tokens": input_delta,
            "output_tokens": output_delta,
            "tokens": input_delta + output_delta,
        }
        limits = {dim: limit for dim, limit, _ in _costs(grant.limits, 0)}
        args: list[Any] = [repr(self.period), grant.lease, repr(self.lease_ttl), "1" if release else "0"]
        for dim in DIMENSIONS:
            args += [limits.get(dim, 0), deltas.get(dim, 0) if dim in limits else 0]
        await self._call(self._adjust_script, self._keys(grant.key), args)


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
