"""The in-process limiter on a fake clock: rpm, tpm, concurrency, the queue, streaming, reconcile."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.admission.limiter import Grant, MemoryLimiter, Refusal, Usage
from sidecar.config.admission import Limits
from sidecar.core.clock import FakeClock

WALL = 1_700_000_000.0


def limiter(clock: FakeClock, **kwargs: float) -> MemoryLimiter:
    return MemoryLimiter(period=60.0, clock=clock, **kwargs)  # type: ignore[arg-type]


def granted(outcome: Grant | Refusal) -> Grant:
    assert isinstance(outcome, Grant), outcome
    return outcome


def refused(outcome: Grant | Refusal) -> Refusal:
    assert isinstance(outcome, Refusal), outcome
    return outcome


async def test_requests_per_minute() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock)
    limits = Limits(requests_per_minute=3)
    remaining = []
    for _ in range(3):
        grant = granted(await lim.acquire("k", limits, 10))
        remaining.append(grant.states["requests"].remaining)
    assert remaining == [2, 1, 0]
    assert grant.states["requests"].limit == 3
    assert grant.states["requests"].reset == pytest.approx(WALL + 60)  # full again after a minute
    refusal = refused(await lim.acquire("k", limits, 10))
    assert refusal.reason == "requests" and refusal.retryable
    assert refusal.retry_after == pytest.approx(20.0)  # one request refills every 60/3 s
    assert refusal.states["requests"].remaining == 0
    assert granted(await lim.acquire("other", limits, 10))  # keys are independent
    clock.advance(19.9)
    refused(await lim.acquire("k", limits, 10))
    clock.advance(0.1)
    granted(await lim.acquire("k", limits, 10))
    clock.advance(600)
    assert granted(await lim.acquire("k", limits, 10)).states["requests"].remaining == 2


async def test_input_tokens_per_minute_and_combined() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock)
    limits = Limits(input_tokens_per_minute=1000, tokens_per_minute=5000)
    first = granted(await lim.acquire("k", limits, 400))
    assert first.states["input_tokens"].remaining == 600
    assert first.states["tokens"].remaining == 4600
    granted(await lim.acquire("k", limits, 400))
    refusal = refused(await lim.acquire("k", limits, 400))
    assert refusal.reason == "input_tokens"
    assert refusal.retry_after == pytest.approx(12.0)  # 200 tokens short at 1000/60 s
    granted(await lim.acquire("k", limits, 200))  # a smaller request still fits now


async def test_a_cost_above_the_limit_is_refused_at_once() -> None:
    clock = FakeClock(start=0.0, wall=WALL)
    lim = limiter(clock, max_wait=30.0)
    refusal = refused(await lim.acquire("k", Limits(tokens_per_minute=1000), 1001))
    assert not refusal.retryable and refusal.reason == "tokens" and "never" in refusal.message
    assert clock.sleeps == []


async def test_concurrency() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock)
    limits = Limits(concurrency=2)
    a = granted(await lim.acquire("k", limits, 1))
    granted(await lim.acquire("k", limits, 1))
    assert lim.in_flight("k") == 2
    refusal = refused(await lim.acquire("k", limits, 1))
    assert refusal.reason == "concurrency" and refusal.retry_after == 1.0
    await lim.release(a)
    await lim.release(a)  # idempotent
    assert lim.in_flight("k") == 1
    granted(await lim.acquire("k", limits, 1))


async def test_rate_wait_in_queue_then_admitted() -> None:
    clock = FakeClock(start=0.0, wall=WALL)  # autojump: waits take no real time
    lim = limiter(clock, max_wait=30.0)
    limits = Limits(requests_per_minute=3)
    for _ in range(3):
        granted(await lim.acquire("k", limits, 1))
    grant = granted(await lim.acquire("k", limits, 1))
    assert grant.waited == pytest.approx(20.0)
    assert clock.monotonic() == pytest.approx(20.0)


async def test_a_wait_longer_than_max_wait_is_refused_at_once() -> None:
    clock = FakeClock(start=0.0, wall=WALL)
    lim = limiter(clock, max_wait=5.0)
    limits = Limits(requests_per_minute=3)
    for _ in range(3):
        granted(await lim.acquire("k", limits, 1))
    refusal = refused(await lim.acquire("k", limits, 1))
    assert refusal.waited == 0.0 and clock.sleeps == []
    assert refusal.retry_after == pytest.approx(20.0)
    # max_wait per call overrides the limiter's
    assert granted(await lim.acquire("k", limits, 1, max_wait=25.0)).waited == pytest.approx(20.0)


async def test_concurrency_waits_for_a_release() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock, max_wait=5.0)
    limits = Limits(concurrency=1)
    first = granted(await lim.acquire("k", limits, 1))
    waiter = asyncio.ensure_future(lim.acquire("k", limits, 1))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiter.done() and lim.waiting("k") == 1
    clock.advance(1.0)
    await lim.release(first)
    second = granted(await waiter)
    assert second.waited == pytest.approx(1.0)
    assert lim.waiting("k") == 0


async def test_concurrency_wait_times_out_then_refuses() -> None:
    clock = FakeClock(start=0.0, wall=WALL)
    lim = limiter(clock, max_wait=5.0)
    limits = Limits(concurrency=1)
    granted(await lim.acquire("k", limits, 1))
    refusal = refused(await lim.acquire("k", limits, 1))
    assert refusal.reason == "concurrency" and refusal.waited == pytest.approx(5.0)
    assert lim.waiting("k") == 0


async def test_the_queue_is_bounded() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock, max_wait=5.0, max_waiting=1)
    limits = Limits(concurrency=1)
    first = granted(await lim.acquire("k", limits, 1))
    waiter = asyncio.ensure_future(lim.acquire("k", limits, 1))
    await asyncio.sleep(0)
    assert lim.waiting("k") == 1
    overflow = refused(await lim.acquire("k", limits, 1))  # the queue is full: at once
    assert overflow.waited == 0.0
    await lim.release(first)
    granted(await waiter)


async def test_streamed_output_is_charged_and_may_go_into_debt() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock)
    limits = Limits(output_tokens_per_minute=100, tokens_per_minute=1000)
    grant = granted(await lim.acquire("k", limits, 50))
    assert grant.states["output_tokens"].remaining == 100
    await lim.charge(grant, 60)
    await lim.charge(grant, 70)  # past the limit: a stream is never cut
    assert grant.output_charged == 130
    refusal = refused(await lim.acquire("k", limits, 1))  # the output bucket is empty
    assert refusal.reason == "output_tokens"
    assert refusal.retry_after == pytest.approx(18.6)  # 30 in debt + 1 token of room, at 100/60 s
    await lim.release(grant)
    clock.advance(18.6)
    second = granted(await lim.acquire("k", limits, 1))
    # the combined bucket (180 charged at 1000/60 s) refilled within those 18.6 s
    assert second.states["tokens"].remaining == 999


async def test_release_reconciles_the_estimate_with_real_usage() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock)
    limits = Limits(input_tokens_per_minute=1000, output_tokens_per_minute=1000, tokens_per_minute=2000)
    grant = granted(await lim.acquire("k", limits, 500))
    await lim.charge(grant, 50)
    await lim.release(grant, Usage(input_tokens=100, output_tokens=80))  # estimate was high
    probe = granted(await lim.acquire("k", limits, 0))
    assert probe.states["input_tokens"].remaining == 900
    assert probe.states["output_tokens"].remaining == 920
    assert probe.states["tokens"].remaining == 1820
    await lim.release(probe)
    low = granted(await lim.acquire("k", limits, 10))
    await lim.release(low, Usage(input_tokens=610, output_tokens=0))  # estimate was low
    probe = granted(await lim.acquire("k", limits, 0))
    assert probe.states["input_tokens"].remaining == 900 - 610


async def test_a_stream_that_ends_early_is_charged_what_it_used() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock)
    limits = Limits(output_tokens_per_minute=1000)
    grant = granted(await lim.acquire("k", limits, 10))
    await lim.charge(grant, 30)
    await lim.release(grant)  # cancelled: no usage, the 30 streamed stay charged
    probe = granted(await lim.acquire("k", limits, 0))
    assert probe.states["output_tokens"].remaining == 970


async def test_a_refund_wakes_a_waiter() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock, max_wait=30.0)
    limits = Limits(input_tokens_per_minute=1000)
    big = granted(await lim.acquire("k", limits, 1000))
    waiter = asyncio.ensure_future(lim.acquire("k", limits, 500))  # would wait 30 s
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiter.done()
    await lim.release(big, Usage(input_tokens=100, output_tokens=0))
    assert granted(await waiter).waited == 0.0


async def test_a_changed_limit_counts_the_used_units_against_the_new_one() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock)
    for _ in range(2):
        granted(await lim.acquire("k", Limits(requests_per_minute=2), 1))
    refused(await lim.acquire("k", Limits(requests_per_minute=2), 1))
    raised = Limits(requests_per_minute=5)  # a reload: 2 of 5 used, 3 left at once
    assert [granted(await lim.acquire("k", raised, 1)).states["requests"].remaining for _ in range(3)] == [
        2,
        1,
        0,
    ]
    refused(await lim.acquire("k", raised, 1))
    # Lowered: the 5 units used are 150 s of debt at 2 per minute; one more fits in 120 s.
    lowered = refused(await lim.acquire("k", Limits(requests_per_minute=2), 1))
    assert lowered.states["requests"].remaining == 0 and lowered.retry_after == pytest.approx(120.0)


async def test_held_grants_are_counted_until_released() -> None:
    # sidecar_admission_leases reads this: a count that stays up after traffic is a leak.
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    lim = limiter(clock, max_wait=5.0)
    limits = Limits(concurrency=1)
    first = granted(await lim.acquire("k", limits, 10))
    second = granted(await lim.acquire("j", limits, 10))
    assert lim.held_by_key() == {"k": 1, "j": 1}
    waiter = asyncio.ensure_future(lim.acquire("k", limits, 10))
    await asyncio.sleep(0)
    await lim.release(first)
    await lim.release(first)  # idempotent: counted once
    third = granted(await waiter)  # admitted after queueing: held too
    assert lim.held_by_key() == {"k": 1, "j": 1}
    await lim.release(third)
    await lim.release(second)
    assert lim.held_by_key() == {}
