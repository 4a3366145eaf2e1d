"""The circuit breaker: consecutive failures, failure rate over a window, half-open probes."""

from __future__ import annotations

from sidecar.config.policy import BreakerConfig
from sidecar.core.clock import FakeClock
from sidecar.routing.policy import BreakerState, CircuitBreaker


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
