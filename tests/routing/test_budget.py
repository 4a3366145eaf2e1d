"""The retry budget: a cap per request and a share of the traffic over a sliding window."""

from __future__ import annotations

from sidecar.config.policy import BudgetConfig
from sidecar.core.clock import FakeClock
from sidecar.routing.policy import RetryBudget


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
