"""The limiter interface and what it hands out: ``Limiter``, ``Grant``, ``Refusal``, ``Usage``.

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

This module owns that queue (``Limiter.acquire``), the charge and release bookkeeping, and the
helpers both backends share (``rate_costs``, ``too_large``, ``rate_message``); the backends
(``memory``, ``redis``) implement ``_try``, ``_pause`` and ``_adjust``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config.admission import Limits
from ...core.clock import Clock, SystemClock

__all__ = [
    "CONCURRENCY_RETRY_AFTER",
    "DIMENSIONS",
    "EPS",
    "Grant",
    "LimitState",
    "Limiter",
    "Refusal",
    "Usage",
    "rate_costs",
    "rate_message",
    "too_large",
]

# Rate dimensions, in the order of the Redis scripts' arguments.
DIMENSIONS = ("requests", "input_tokens", "output_tokens", "tokens")
_LIMIT_OF = {
    "requests": "requests_per_minute",
    "input_tokens": "input_tokens_per_minute",
    "output_tokens": "output_tokens_per_minute",
    "tokens": "tokens_per_minute",
}
EPS = 1e-6  # seconds of float slack in GCRA comparisons
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


def rate_costs(limits: Limits, input_tokens: int) -> list[tuple[str, int, int]]:
    """(dimension, limit, cost at admission) of the limited rate dimensions."""
    costs = {"requests": 1, "input_tokens": input_tokens, "output_tokens": 0, "tokens": input_tokens}
    out = []
    for dim in DIMENSIONS:
        limit = getattr(limits, _LIMIT_OF[dim])
        if limit is not None:
            out.append((dim, int(limit), costs[dim]))
    return out


def too_large(key: str, dim: str, limit: int, cost: int) -> Refusal:
    unit = "tokens" if dim != "requests" else "requests"
    return Refusal(
        key=key,
        reason=dim,
        message=f"this request's estimated {dim.replace('_', ' ')} ({cost} {unit}) exceed the key's "
        f"limit of {limit} per minute; it can never be admitted",
        retry_after=0.0,
        retryable=False,
    )


def rate_message(reason: str) -> str:
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
        self._held: dict[str, int] = {}  # grants not released yet, per key (this process's)
        self.users = 0  # Admissions using this limiter (config snapshots across reloads)

    def waiting(self, key: str) -> int:
        """Requests of ``key`` waiting in this process now."""
        return self._waiting.get(key, 0)

    def waiting_by_key(self) -> dict[str, int]:
        """Requests waiting in this process now, per key (for metrics)."""
        return dict(self._waiting)

    def held_by_key(self) -> dict[str, int]:
        """Grants this process holds now (admitted, not released), per key (for metrics): a
        count that does not come back to 0 once traffic stops is a leaked lease."""
        return {key: n for key, n in self._held.items() if n}

    def _granted(self, grant: Grant) -> Grant:
        self._held[grant.key] = self._held.get(grant.key, 0) + 1
        return grant

    async def acquire(
        self, key: str, limits: Limits, input_tokens: int, *, max_wait: float | None = None
    ) -> Grant | Refusal:
        """Admit one request of ``key`` costing ``input_tokens`` (the estimate), waiting up to
        ``max_wait`` seconds (default: the limiter's) in the key's queue when it does not fit."""
        input_tokens = max(int(input_tokens), 0)
        wait = self.max_wait if max_wait is None else max_wait
        start = self.clock.monotonic()
        outcome = await self._try(key, limits, input_tokens)
        if isinstance(outcome, Grant):
            return self._granted(outcome)
        if not outcome.retryable or wait <= 0:
            return outcome
        if outcome.reason != "concurrency" and outcome.retry_after > wait + EPS:
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
                elif outcome.retry_after > left + EPS:
                    break
                else:
                    pause = min(outcome.retry_after, left)
                await self._pause(key, pause)
                outcome = await self._try(key, limits, input_tokens)
                if isinstance(outcome, Grant):
                    outcome.waited = self.clock.monotonic() - start
                    return self._granted(outcome)
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
        self._held[grant.key] -= 1
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
