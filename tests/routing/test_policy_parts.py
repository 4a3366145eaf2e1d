"""Backoff, breaker, balancer, budget, clock and hops: the policy's small parts."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from sidecar.config.policy import BreakerConfig, BudgetConfig, HopConfig
from sidecar.core.clock import FakeClock, wait_within
from sidecar.errors import InvalidRequest
from sidecar.hops import HopLimitExceeded, add_server_timing, check_hops, forward_hops, server_timing_entry
from sidecar.routing.policy import (
    Backoff,
    BreakerState,
    CircuitBreaker,
    RetryBudget,
    WeightedBalancer,
    parse_retry_after,
)

NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT

# -- backoff -------------------------------------------------------------------------------------


def test_exponential_backoff_without_jitter() -> None:
    backoff = Backoff(0.5, 8.0, 0.0)
    assert [backoff.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff.delay(10_000) == 8.0


def test_jitter_is_seeded_and_within_the_sdk_band() -> None:
    a = Backoff(0.5, 8.0, 0.25, rng=random.Random(7))
    b = Backoff(0.5, 8.0, 0.25, rng=random.Random(7))
    waits = [a.delay(n) for n in range(5)]
    assert waits == [b.delay(n) for n in range(5)]
    for n, wait in enumerate(waits):
        full = min(0.5 * 2**n, 8.0)
        assert 0.75 * full <= wait <= full


def test_retry_after_forms() -> None:
    assert parse_retry_after([("retry-after-ms", "1500"), ("retry-after", "9")], NOW) == 1.5
    assert parse_retry_after([("Retry-After", "2.5")], NOW) == 2.5
    assert parse_retry_after([("retry-after", "Tue, 14 Nov 2023 22:13:27 GMT")], NOW) == 7.0
    assert parse_retry_after([("retry-after", "Tue, 14 Nov 2023 22:00:00 GMT")], NOW) == 0.0
    assert parse_retry_after([("retry-after-ms", "soon"), ("retry-after", "3")], NOW) == 3.0
    assert parse_retry_after([("retry-after", "-1")], NOW) is None
    assert parse_retry_after([("retry-after", "whenever")], NOW) is None
    assert parse_retry_after([], NOW) is None


def test_wait_honours_retry_after_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 8.0, 0.0, max_retry_after=30.0)
    assert backoff.wait(0, [("retry-after-ms", "250")], NOW) == 0.25
    assert backoff.wait(0, [("retry-after", "Tue, 14 Nov 2023 22:13:30 GMT")], NOW) == 10.0
    assert backoff.wait(0, [("retry-after", "60")], NOW) is None  # longer than we hold a client
    assert backoff.wait(2, [], NOW) == 2.0
    ignoring = Backoff(0.5, 8.0, 0.0, honour_retry_after=False)
    assert ignoring.wait(1, [("retry-after", "60")], NOW) == 1.0


# -- circuit breaker -----------------------------------------------------------------------------


def test_breaker_opens_on_consecutive_failures_and_recovers_through_half_open() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerConfig(consecutive_failures=3, min_calls=0, cooldown=10), clock)
    for _ in range(2):
        assert breaker.acquire()
        breaker.record_failure()
    breaker.record_success()  # resets the run
    for _ in range(3):
        assert breaker.acquire()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allows()
    assert breaker.retry_after() == 10.0
    clock.advance(9.9)
    assert not breaker.acquire()
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire()  # the one probe
    assert not breaker.acquire()  # others wait while it is in flight
    breaker.record_failure()  # probe failed: open again, a new cooldown
    assert breaker.state is BreakerState.OPEN and breaker.retry_after() == 10.0
    clock.advance(10)
    assert breaker.acquire()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.transitions == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


def test_breaker_failure_rate_over_window() -> None:
    clock = FakeClock()
    cfg = BreakerConfig(consecutive_failures=0, failure_rate=0.5, min_calls=10, window=10, cooldown=5)
    breaker = CircuitBreaker(cfg, clock)
    for i in range(9):  # 5 successes and 4 failures interleaved: under min_calls
        breaker.acquire()
        breaker.record_failure() if i % 2 else breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    clock.advance(20)  # the window forgets them
    for _ in range(9):
        breaker.acquire()
        breaker.record_success()
    breaker.acquire()
    breaker.record_failure()  # 1 / 10
    assert breaker.state is BreakerState.CLOSED
    for _ in range(8):
        breaker.acquire()
        breaker.record_failure()  # 9 / 18 = 0.5
    assert breaker.state is BreakerState.OPEN


def test_breaker_release_frees_a_probe_and_shadow_never_skips() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerConfig(consecutive_failures=1, cooldown=1, half_open_probes=2), clock)
    breaker.acquire()
    breaker.record_failure()
    clock.advance(1)
    assert breaker.acquire() and breaker.acquire() and not breaker.acquire()
    breaker.release()  # a probe was cancelled: its slot is free again
    assert breaker.acquire()
    breaker.record_success()
    assert breaker.state is BreakerState.HALF_OPEN  # needs both probes to succeed
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED

    shadow = CircuitBreaker(BreakerConfig(consecutive_failures=1, shadow=True), clock)
    shadow.record_failure()
    assert shadow.state is BreakerState.OPEN and shadow.allows()


# -- balancer ------------------------------------------------------------------------------------


def test_smooth_round_robin_is_exact_and_interleaved() -> None:
    balancer = WeightedBalancer([5, 1, 1])
    picks = [balancer.pick() for _ in range(7)]
    assert picks == [0, 0, 1, 0, 2, 0, 0]
    assert Counter(balancer.pick() for _ in range(700)) == {0: 500, 1: 100, 2: 100}


def test_weighted_random_is_seeded_and_within_tolerance() -> None:
    def run(seed: int) -> list[int | None]:
        balancer = WeightedBalancer([3, 1], mode="random", rng=random.Random(seed))
        return [balancer.pick() for _ in range(4000)]

    picks = run(42)
    assert picks == run(42)
    share = picks.count(0) / len(picks)
    assert abs(share - 0.75) < 0.02


def test_balancer_skips_ineligible_and_keeps_proportions() -> None:
    balancer = WeightedBalancer([2, 1, 1])
    picks = Counter(balancer.pick([True, False, True]) for _ in range(300))
    assert picks == {0: 200, 2: 100}
    assert balancer.pick([False, False, False]) is None


# -- retry budget --------------------------------------------------------------------------------


def test_budget_caps_per_request_and_share_of_traffic() -> None:
    clock = FakeClock()
    budget = RetryBudget(BudgetConfig(max_retries_per_request=2, ratio=0.1, min_retries=2, window=10), clock)
    assert budget.try_retry(0) and budget.try_retry(1)
    assert not budget.try_retry(2)  # the request's own cap
    for _ in range(10):
        budget.record_request()
    # 2 retries taken; allowance is 2 + 0.1 * 10 = 3
    assert budget.try_retry(0)
    assert not budget.try_retry(0)
    assert budget.refused == 1
    assert budget.usage() == (10, 3)
    clock.advance(11)  # the window slides past
    assert budget.usage() == (0, 0)
    assert budget.try_retry(0)


# -- clock ---------------------------------------------------------------------------------------


async def test_fake_clock_jumps_and_wait_within_times_out() -> None:
    clock = FakeClock(start=0.0)
    await clock.sleep(3600)
    assert clock.monotonic() == 3600.0 and clock.sleeps == [3600]
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert not await wait_within(clock, never, 5)
    assert clock.monotonic() == 3605.0 and not never.done()
    soon = asyncio.ensure_future(clock.sleep(2))
    assert await wait_within(clock, soon, 5)
    assert clock.monotonic() == 3607.0 and clock.pending() == 0
    never.cancel()


# -- hops ----------------------------------------------------------------------------------------


def test_hops_count_and_refuse_loops() -> None:
    cfg = HopConfig(max_hops=3)
    assert check_hops({}, cfg) == 0
    headers: dict[str, str] = {}
    forward_hops(headers, check_hops({"sidecar-hops": "2"}, cfg), cfg)
    assert headers == {"sidecar-hops": "3"}
    with pytest.raises(HopLimitExceeded) as info:
        check_hops(headers, cfg)
    err = info.value
    assert (err.status, err.error_type) == (508, "api_error")
    assert ("x-should-retry", "false") in err.headers
    assert "loop" in err.message
    with pytest.raises(InvalidRequest, match="sidecar-hops"):
        check_hops({"sidecar-hops": "-1"}, cfg)


def test_server_timing_reads_outermost_first() -> None:
    headers = [("content-type", "application/json"), ("Server-Timing", 'sidecar-2;dur=0.6;desc="zone-a"')]
    add_server_timing(headers, server_timing_entry(1, 0.00081, 'edge "1"'))
    assert headers == [
        ("content-type", "application/json"),
        ("server-timing", 'sidecar-1;dur=0.8;desc="edge \\"1\\"", sidecar-2;dur=0.6;desc="zone-a"'),
    ]
