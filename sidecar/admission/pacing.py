"""Upstream-aware admission: slow down before the upstream starts refusing.

Every upstream answer (and error) that carries the real API's
``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``
headers, or a ``retry-after`` on a refusal, is read into the ``UpstreamBudget`` of the upstream
credential that request used (one budget per provider, base URL and key: every route and client
key that spends the same upstream key shares it). Before the next attempt goes out, its cost is
taken from that budget: one request, the local input-token estimate (never an extra round trip),
and at least one output token must be left.

Each dimension is kept as a token bucket, the model the API documents: the upstream said
``remaining`` of ``limit`` at the time of the answer, and the bucket refills continuously until
it is full at ``reset`` (rate ``(limit - remaining) / (reset - now)``; ``limit / 60`` per second
when reset is under a second away or missing). Costs are reserved when the decision is made, so
concurrent requests queue behind each other and go out paced, one interval apart, instead of in
a burst the upstream would refuse. ``reserve`` (a fraction of each limit) is kept free as a
cushion for other replicas and clients of the same key; it does not lower throughput at
saturation, only how low the bucket is allowed to go.

A request whose wait would exceed ``max_wait`` (or its deadline) is refused at once with 429
``rate_limit_error`` and a ``retry-after`` saying when it would fit, which the SDKs honour; a
route with fallbacks tries its next target instead. An upstream's ``retry-after`` on a 429 holds
every request of that budget until it passes (within ``max_wait``); a 503's or 529's does not.

The budget is the upstream's own view, so it is shared across replicas without any coordination:
every replica reads the same organisation-level counters from its answers.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..core.clock import Clock, SystemClock
from ..errors import RateLimited
from ..routing.policy.backoff import parse_retry_after

__all__ = [
    "Bucket",
    "PaceStats",
    "Pacers",
    "Reservation",
    "UpstreamBudget",
    "budget_identity",
    "read_ratelimit_headers",
]

_PREFIX = "anthropic-ratelimit-"
_DIMENSIONS = {
    "requests": "requests",
    "tokens": "tokens",
    "input-tokens": "input_tokens",
    "output-tokens": "output_tokens",
}
_MIN_RATE_WINDOW = 1.0  # seconds: a reset closer than this says little about the refill rate
_DEFAULT_PERIOD = 60.0  # the API's limits are per minute
MAX_BUDGETS = 10_000  # budgets kept (one per upstream key); the least recently used go first


@functools.lru_cache(maxsize=256)
def _parse_reset(value: str) -> float | None:
    """An RFC 3339 time (``2026-05-01T12:00:03Z``) as epoch seconds, or None. Cached: every answer
    carries up to four of them, and the same values repeat for a second at a time."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


def _count(value: str) -> int | None:
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if number >= 0 else None


# Every header name read, to its dimension and part: one dict lookup per answer header.
_HEADER_PARTS = {
    f"{_PREFIX}{base}-{part}": (dim, part)
    for base, dim in _DIMENSIONS.items()
    for part in ("limit", "remaining", "reset")
}


def read_ratelimit_headers(headers: Iterable[tuple[str, str]]) -> dict[str, tuple[int, int, float | None]]:
    """``{dimension: (limit, remaining, reset epoch or None)}`` of the ``anthropic-ratelimit-*``
    headers; a dimension without a readable limit and remaining is left out."""
    found: dict[str, dict[str, str]] | None = None
    parts_of = _HEADER_PARTS.get
    for name, value in headers:
        hit = parts_of(name)
        if hit is not None:
            if found is None:
                found = {}
            dim, part = hit
            parts = found.get(dim)
            if parts is None:
                parts = found[dim] = {}
            parts[part] = value
    out: dict[str, tuple[int, int, float | None]] = {}
    if found is None:
        return out
    for dim, parts in found.items():
        limit = _count(parts.get("limit", ""))
        remaining = _count(parts.get("remaining", ""))
        if not limit or remaining is None:
            continue
        reset = _parse_reset(parts["reset"]) if "reset" in parts else None
        out[dim] = (limit, min(remaining, limit), reset)
    return out


@dataclass(slots=True)
class Bucket:
    """One dimension of an upstream's limits: a token bucket seeded by its last answer."""

    limit: int
    level: float  # units left at ``at`` (negative: reserved ahead by waiting requests)
    at: float  # monotonic seconds
    rate: float  # units refilled per second
    pending: float = 0.0  # units reserved by requests still waiting to go out

    def level_at(self, now: float) -> float:
        if now <= self.at:
            return self.level
        return min(float(self.limit), self.level + self.rate * (now - self.at))

    def advance(self, now: float) -> None:
        self.level = self.level_at(now)
        self.at = max(self.at, now)

    def delay(self, need: float, now: float) -> float:
        """Seconds until ``need`` units are there (0: now)."""
        level = self.level_at(now)
        if level >= need:
            return 0.0
        return (need - level) / self.rate if self.rate > 0 else math.inf


@dataclass(slots=True)
class Reservation:
    """Costs taken from a budget for one attempt (``waited`` seconds before it went out), and the
    attempt's place in the order attempts went out (``seq``, for ``observe``)."""

    costs: dict[str, int]
    seq: int
    waited: float = 0.0


@dataclass(slots=True)
class PaceStats:
    """Per upstream name, for metrics: attempts held back, seconds held, attempts refused."""

    waited: int = 0
    wait_seconds: float = 0.0
    refused: int = 0


class UpstreamBudget:
    """What one upstream key may still spend, from its answers' headers. Every method but
    ``take`` is synchronous: a decision and its reservation happen without a switch between."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}
        self.blocked_until = 0.0  # monotonic: the upstream's retry-after
        # Attempts sent and not answered yet (seq -> costs), and the newest seq whose answer
        # set the buckets: an answer describes the upstream after its own request, not after
        # the ones sent later, which are still to be counted against what it says.
        self.in_flight: dict[int, dict[str, int]] = {}
        self._in_flight_costs: dict[str, int] = {}  # the sum of ``in_flight``'s costs per dimension
        self.applied = 0
        self._seq = 0

    def sent(self, costs: dict[str, int]) -> int:
        """An attempt goes out now with ``costs``: its ``seq`` for ``observe`` / ``done``."""
        self._seq += 1
        self.in_flight[self._seq] = costs
        total = self._in_flight_costs
        for dim, cost in costs.items():
            total[dim] = total.get(dim, 0) + cost
        return self._seq

    def _landed(self, seq: int) -> None:
        costs = self.in_flight.pop(seq, None)
        if costs is not None:
            total = self._in_flight_costs
            for dim, cost in costs.items():
                total[dim] -= cost

    def done(self, seq: int) -> None:
        """The attempt ended without an answer to read (a connection error, a cancellation)."""
        self._landed(seq)

    def observe(self, headers: Iterable[tuple[str, str]], status: int, seq: int | None = None) -> None:
        """Read an answer's (or an error's) headers: ratelimit state, and the ``retry-after`` of
        a 429 (a 503's or 529's is about the service's load, not this key's budget).

        With ``seq`` (from ``sent``): an answer older than one already read is stale and leaves
        the buckets alone; a newer one has the costs of the attempts sent after it, still in
        flight, taken off what it says.
        """
        if not isinstance(headers, list):
            headers = list(headers)
        stale = False
        if seq is not None:
            self._landed(seq)
            stale = seq < self.applied
            if not stale:
                self.applied = seq
        found = {} if stale else read_ratelimit_headers(headers)
        if not found and status != 429:
            return  # nothing to read (an answer without ratelimit headers, or a stale one)
        now = self.clock.monotonic()
        wall = self.clock.time()
        later: dict[str, float] = {}
        if found and seq is not None and self.in_flight:
            # What was sent after this attempt: everything in flight but the few sent before
            # it (``in_flight`` is in send order, and answers mostly come in it).
            later = dict(self._in_flight_costs)
            for other, costs in self.in_flight.items():
                if other > seq:
                    break
                for dim, cost in costs.items():
                    later[dim] -= cost
        for dim, (limit, remaining, reset) in found.items():
            until = None if reset is None else reset - wall
            if until is not None and until >= _MIN_RATE_WINDOW and limit > remaining:
                rate = (limit - remaining) / until
            else:
                rate = limit / _DEFAULT_PERIOD
            rate = min(max(rate, limit / 86_400), float(limit))
            old = self.buckets.get(dim)
            if old is not None and old.limit == limit:
                # Updated in place: one answer per request, and most keep their limits.
                old.level = remaining - old.pending - later.get(dim, 0)
                old.at = now
                old.rate = rate
            else:
                self.buckets[dim] = Bucket(limit, remaining - later.get(dim, 0), now, rate)
        if status == 429:
            after = parse_retry_after(headers, wall)
            if after is not None and after > 0:
                self.blocked_until = max(self.blocked_until, now + after)

    def delay(self, costs: Mapping[str, int], reserve: float) -> float:
        """Seconds until ``costs`` fit (0: now), without taking anything. In each bucket a cost
        needs itself (at least one unit) plus the ``reserve`` cushion, capped at the limit; a
        cost above a bucket's limit can never fit there and is left for the upstream to decide."""
        now = self.clock.monotonic()
        wait = self.blocked_until - now
        if wait < 0.0:
            wait = 0.0
        for dim, bucket in self.buckets.items():
            cost = costs.get(dim, 0)
            limit = bucket.limit
            if cost > limit:
                continue
            need = min(max(cost, 1) + reserve * limit, float(limit))
            level = bucket.level_at(now)
            if level < need:
                until = (need - level) / bucket.rate if bucket.rate > 0 else math.inf
                if until > wait:
                    wait = until
        return wait

    def reserve(self, costs: Mapping[str, int], waiting: bool) -> None:
        now = self.clock.monotonic()
        for dim, cost in costs.items():
            bucket = self.buckets.get(dim)
            if bucket is None or not cost:
                continue
            bucket.advance(now)
            bucket.level -= cost
            if waiting:
                bucket.pending += cost

    def settle(self, costs: Mapping[str, int], *, refund: bool) -> None:
        """A waiting request went out (or, ``refund``, gave up): no longer pending."""
        now = self.clock.monotonic()
        for dim, cost in costs.items():
            bucket = self.buckets.get(dim)
            if bucket is None or not cost:
                continue
            bucket.pending = max(bucket.pending - cost, 0.0)
            if refund:
                bucket.advance(now)
                bucket.level = min(bucket.level + cost, float(bucket.limit))


def budget_identity(provider: str, base_url: str, credential: str) -> str:
    """The budget a request spends: its upstream's provider, address and key (hashed)."""
    digest = hashlib.blake2b(credential.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    return f"{provider} {base_url} {digest}"


@dataclass
class Pacers:
    """Every upstream budget of the process (they outlive config reloads), and their counters."""

    clock: Clock = field(default_factory=SystemClock)
    max_budgets: int = MAX_BUDGETS
    budgets: OrderedDict[str, UpstreamBudget] = field(default_factory=OrderedDict)
    stats: dict[str, PaceStats] = field(default_factory=dict)

    def budget(self, identity: str) -> UpstreamBudget:
        budget = self.budgets.get(identity)
        if budget is None:
            budget = self.budgets[identity] = UpstreamBudget(self.clock)
            if len(self.budgets) > self.max_budgets:
                self.budgets.popitem(last=False)
        else:
            self.budgets.move_to_end(identity)
        return budget

    def stats_of(self, upstream: str) -> PaceStats:
        stats = self.stats.get(upstream)
        if stats is None:
            stats = self.stats[upstream] = PaceStats()
        return stats

    @staticmethod
    def take_now(budget: UpstreamBudget, costs: dict[str, int], reserve: float) -> Reservation | float:
        """Take ``costs`` from ``budget`` if they fit now (the common case, without a switch to
        another task); else the seconds until they would (``hold`` waits them out)."""
        wait = budget.delay(costs, reserve)
        if wait > 0:
            return wait
        budget.reserve(costs, waiting=False)
        return Reservation(costs, budget.sent(costs))

    async def take(
        self,
        budget: UpstreamBudget,
        costs: dict[str, int],
        *,
        upstream: str,
        reserve: float,
        max_wait: float,
    ) -> Reservation:
        """Take ``costs`` from ``budget``, waiting up to ``max_wait`` seconds for them to fit.

        Raises ``RateLimited`` (with ``retry-after``) when they would not fit in time. A
        cancelled wait gives its reservation back.
        """
        now = self.take_now(budget, costs, reserve)
        if isinstance(now, Reservation):
            return now
        return await self.hold(budget, costs, now, upstream=upstream, max_wait=max_wait)

    async def hold(
        self, budget: UpstreamBudget, costs: dict[str, int], wait: float, *, upstream: str, max_wait: float
    ) -> Reservation:
        """``take``'s wait: ``costs`` fit in ``wait`` seconds (``take_now``'s answer)."""
        stats = self.stats_of(upstream)
        if wait > max_wait:
            stats.refused += 1
            seconds = "unknown" if math.isinf(wait) else f"{wait:.1f}"
            raise RateLimited(
                f"upstream {upstream!r} is at its rate limit; this request would fit in {seconds} s, "
                f"longer than the sidecar waits ({max_wait:g} s)",
                headers=[("retry-after", str(max(math.ceil(min(wait, 3600.0)), 1)))],
            )
        budget.reserve(costs, waiting=True)
        stats.waited += 1
        try:
            await self.clock.sleep(wait)
        except BaseException:
            budget.settle(costs, refund=True)
            raise
        budget.settle(costs, refund=False)
        stats.wait_seconds += wait
        return Reservation(costs, budget.sent(costs), wait)
