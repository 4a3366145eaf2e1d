"""The retry budget: retries per request, and retries as a share of recent traffic.

A failing upstream under load must not get a retry storm on top: over the last ``window``
seconds, retries may be at most ``min_retries + ratio * requests``. Each request may in any case
retry at most ``max_retries_per_request`` times.
"""

from __future__ import annotations

from ...config.policy import BudgetConfig
from ...core.clock import Clock
from ._window import Window

__all__ = ["RetryBudget"]

_REQUESTS, _RETRIES = 0, 1


class RetryBudget:
    """Shared by every request of a route (or more); asyncio-safe (no await inside)."""

    def __init__(self, config: BudgetConfig, clock: Clock) -> None:
        self.config = config
        self._window = Window(clock, config.window, 2)
        self.refused = 0  # retries refused by the traffic share (for metrics)

    def record_request(self) -> None:
        """A request started (call once per request, before its first attempt)."""
        self._window.add(_REQUESTS)

    def try_retry(self, retries_so_far: int) -> bool:
        """Take one retry for a request that already retried ``retries_so_far`` times.

        False (and nothing taken) when the request's own cap or the traffic share is used up.
        """
        if retries_so_far >= self.config.max_retries_per_request:
            return False
        requests, retries = self._window.totals()
        if retries >= self.config.min_retries + self.config.ratio * requests:
            self.refused += 1
            return False
        self._window.add(_RETRIES)
        return True

    def usage(self) -> tuple[int, int]:
        """(requests, retries) in the current window."""
        requests, retries = self._window.totals()
        return requests, retries
