"""The weighted balancer: smooth round robin, seeded random, ineligible targets skipped."""

from __future__ import annotations

import random
from collections import Counter

from sidecar.routing.policy import WeightedBalancer


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
