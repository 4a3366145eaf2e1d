"""Upstream pacing on a fake clock: header parsing, the refill model, paced queues, retry-after."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.admission.pacing import Pacers, UpstreamBudget, budget_identity, read_ratelimit_headers
from sidecar.core.clock import FakeClock
from sidecar.errors import RateLimited
from sidecar.translate.openai_response import ratelimit_headers_from_openai

WALL = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def headers(dim: str, limit: int, remaining: int, reset: str) -> list[tuple[str, str]]:
    base = f"anthropic-ratelimit-{dim}"
    return [(f"{base}-limit", str(limit)), (f"{base}-remaining", str(remaining)), (f"{base}-reset", reset)]


def test_read_ratelimit_headers() -> None:
    found = read_ratelimit_headers(
        [
            *headers("requests", 50, 49, "2023-11-14T22:13:21Z"),
            *headers("input-tokens", 30000, 29000, "2023-11-14T22:13:22+00:00"),
            ("anthropic-ratelimit-output-tokens-limit", "8000"),  # no remaining: left out
            ("anthropic-ratelimit-tokens-limit", "x"),  # garbage: left out
            ("anthropic-ratelimit-tokens-remaining", "5"),
            ("request-id", "req_1"),
        ]
    )
    assert found == {
        "requests": (50, 49, WALL + 1),
        "input_tokens": (30000, 29000, WALL + 2),
    }
    # A reset that is not RFC 3339 keeps the counts and drops the time.
    assert read_ratelimit_headers(headers("requests", 5, 9, "soon")) == {"requests": (5, 5, None)}


def test_no_headers_no_pacing() -> None:
    budget = UpstreamBudget(FakeClock(start=0.0, wall=WALL, autojump=False))
    budget.observe([("request-id", "r")], 200)
    assert budget.buckets == {} and budget.delay({"requests": 1}, 0.05) == 0.0


def test_refill_rate_from_reset() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    budget = UpstreamBudget(clock)
    # 2 of 120 left, full again in 59 s: the bucket refills at (120 - 2) / 59 = 2 per second.
    budget.observe(headers("requests", 120, 2, "2023-11-14T22:14:19Z"), 200)
    assert budget.buckets["requests"].rate == pytest.approx(2.0)
    assert budget.delay({"requests": 1}, 0.0) == 0.0
    budget.reserve({"requests": 1}, waiting=False)
    budget.reserve({"requests": 1}, waiting=False)
    assert budget.delay({"requests": 1}, 0.0) == pytest.approx(0.5)  # one more unit in 0.5 s
    # The reserve keeps a cushion: 5% of 120 = 6 units more must be there.
    assert budget.delay({"requests": 1}, 0.05) == pytest.approx(3.5)
    clock.advance(0.5)
    assert budget.delay({"requests": 1}, 0.0) == pytest.approx(0.0)


def test_reset_under_a_second_uses_the_per_minute_rate() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    budget = UpstreamBudget(clock)
    budget.observe(headers("requests", 60, 0, "2023-11-14T22:13:20Z"), 200)
    assert budget.buckets["requests"].rate == pytest.approx(1.0)  # 60 per minute
    assert budget.delay({"requests": 1}, 0.0) == pytest.approx(1.0)


def test_token_dimensions_take_the_estimate() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    budget = UpstreamBudget(clock)
    # 1,000 input tokens left of 60,000, refilling at 1,000 per second.
    budget.observe(headers("input-tokens", 60000, 1000, "2023-11-14T22:14:19Z"), 200)
    assert budget.delay({"requests": 1, "input_tokens": 800}, 0.0) == 0.0
    budget.reserve({"requests": 1, "input_tokens": 800}, waiting=False)
    assert budget.delay({"requests": 1, "input_tokens": 800}, 0.0) == pytest.approx(0.6)
    # A cost above the whole limit can never fit: left to the upstream, not held forever.
    assert budget.delay({"input_tokens": 70000}, 0.0) == pytest.approx(0.0)
    # Output tokens cost nothing up front, but the bucket must not be empty.
    budget.observe(headers("output-tokens", 6000, 0, "2023-11-14T22:14:20Z"), 200)
    assert budget.delay({"requests": 1}, 0.0) == pytest.approx(0.01)


def test_retry_after_on_a_refusal_holds_the_budget() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    budget = UpstreamBudget(clock)
    budget.observe([("retry-after", "7")], 200)  # not a refusal: ignored
    budget.observe([("retry-after", "7")], 529)  # the service's load, not this key's budget
    assert budget.delay({"requests": 1}, 0.0) == 0.0
    budget.observe([("retry-after", "7")], 429)
    assert budget.delay({"requests": 1}, 0.0) == pytest.approx(7.0)
    clock.advance(7.0)
    assert budget.delay({"requests": 1}, 0.0) == 0.0


async def test_concurrent_requests_go_out_paced_not_in_a_burst() -> None:
    clock = FakeClock(start=0.0, wall=WALL)
    pacers = Pacers(clock=clock)
    budget = pacers.budget("k")
    budget.observe(headers("requests", 120, 2, "2023-11-14T22:14:19Z"), 200)  # 2 per second
    sent: list[float] = []

    async def one() -> None:
        await pacers.take(budget, {"requests": 1}, upstream="up", reserve=0.0, max_wait=10.0)
        sent.append(clock.monotonic())

    await asyncio.gather(*(one() for _ in range(5)))
    assert sent == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])
    stats = pacers.stats["up"]
    assert stats.waited == 3 and stats.wait_seconds == pytest.approx(0.5 + 1.0 + 1.5)


async def test_a_new_observation_keeps_the_waiting_reservations() -> None:
    clock = FakeClock(start=0.0, wall=WALL)
    pacers = Pacers(clock=clock)
    budget = pacers.budget("k")
    budget.observe(headers("requests", 120, 0, "2023-11-14T22:14:20Z"), 200)
    waiter = asyncio.ensure_future(
        pacers.take(budget, {"requests": 1}, upstream="up", reserve=0.0, max_wait=10.0)
    )
    await asyncio.sleep(0)
    # An answer of another request says 1 is left: the waiter's unit is still spoken for.
    budget.observe(headers("requests", 120, 1, "2023-11-14T22:14:19Z"), 200)
    assert budget.delay({"requests": 1}, 0.0) > 0
    await waiter


async def test_too_long_a_wait_is_refused_at_once_with_retry_after() -> None:
    clock = FakeClock(start=0.0, wall=WALL)
    pacers = Pacers(clock=clock)
    budget = pacers.budget("k")
    budget.observe([("retry-after", "30")], 429)
    with pytest.raises(RateLimited) as info:
        await pacers.take(budget, {"requests": 1}, upstream="up", reserve=0.0, max_wait=5.0)
    assert ("retry-after", "30") in info.value.headers
    assert "'up'" in info.value.message and clock.sleeps == []
    assert pacers.stats["up"].refused == 1


async def test_a_cancelled_wait_gives_its_reservation_back() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    pacers = Pacers(clock=clock)
    budget = pacers.budget("k")
    budget.observe(headers("requests", 120, 0, "2023-11-14T22:14:20Z"), 200)
    before = budget.delay({"requests": 1}, 0.0)
    waiter = asyncio.ensure_future(
        pacers.take(budget, {"requests": 1}, upstream="up", reserve=0.0, max_wait=10.0)
    )
    await asyncio.sleep(0)
    assert budget.delay({"requests": 1}, 0.0) > before
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert budget.delay({"requests": 1}, 0.0) == pytest.approx(before)
    assert budget.buckets["requests"].pending == 0


def test_budgets_are_per_upstream_key_and_bounded() -> None:
    assert budget_identity("anthropic", "https://a", "k1") != budget_identity("anthropic", "https://a", "k2")
    assert "k1" not in budget_identity("anthropic", "https://a", "k1")
    pacers = Pacers(max_budgets=2)
    first = pacers.budget("a")
    pacers.budget("b")
    assert pacers.budget("a") is first  # used again: now the most recent
    pacers.budget("c")
    assert set(pacers.budgets) == {"a", "c"}


def test_openai_ratelimit_headers_become_anthropic_ones() -> None:
    got = ratelimit_headers_from_openai(
        [
            ("X-RateLimit-Limit-Requests", "500"),
            ("x-ratelimit-remaining-requests", "499"),
            ("x-ratelimit-reset-requests", "120ms"),
            ("x-ratelimit-limit-tokens", "30000"),
            ("x-ratelimit-remaining-tokens", "29000"),
            ("x-ratelimit-reset-tokens", "1m30.5s"),
            ("x-ratelimit-limit-images", "5"),
        ],
        WALL,
    )
    assert got == [
        ("anthropic-ratelimit-requests-limit", "500"),
        ("anthropic-ratelimit-requests-remaining", "499"),
        ("anthropic-ratelimit-requests-reset", "2023-11-14T22:13:21Z"),
        ("anthropic-ratelimit-tokens-limit", "30000"),
        ("anthropic-ratelimit-tokens-remaining", "29000"),
        ("anthropic-ratelimit-tokens-reset", "2023-11-14T22:14:51Z"),
    ]
    assert ratelimit_headers_from_openai([("x-ratelimit-limit-requests", "5")], WALL) == []
    garbage = [
        ("x-ratelimit-limit-tokens", "5"),
        ("x-ratelimit-remaining-tokens", "1"),
        ("x-ratelimit-reset-tokens", "later"),
    ]
    assert ratelimit_headers_from_openai(garbage, WALL) == [
        ("anthropic-ratelimit-tokens-limit", "5"),
        ("anthropic-ratelimit-tokens-remaining", "1"),
    ]


def test_answers_count_the_attempts_sent_after_them_and_stale_ones_are_ignored() -> None:
    clock = FakeClock(start=0.0, wall=WALL, autojump=False)
    budget = UpstreamBudget(clock)
    first, second = budget.sent({"requests": 1}), budget.sent({"requests": 1})
    # The first answer says 1 left, but the second attempt went out after it: 0 left.
    budget.observe(headers("requests", 120, 1, "2023-11-14T22:14:19Z"), 200, first)
    assert budget.buckets["requests"].level == 0
    assert budget.in_flight == {second: {"requests": 1}}
    third = budget.sent({"requests": 1})
    budget.observe(headers("requests", 120, 0, "2023-11-14T22:14:20Z"), 200, third)
    # The second answer comes last but is older than the third's: its "1 left" is stale.
    budget.observe(headers("requests", 120, 1, "2023-11-14T22:14:19Z"), 200, second)
    assert budget.buckets["requests"].level == 0 and budget.in_flight == {}
    # A stale refusal still holds the budget for its retry-after.
    budget.observe([("retry-after", "2")], 429, second)
    assert budget.delay({"requests": 1}, 0.0) == pytest.approx(2.0)
    lost = budget.sent({"requests": 1})
    budget.done(lost)
    assert budget.in_flight == {}
