"""A circuit breaker per upstream target::

              consecutive failures >= N, or
              failure rate >= R over the window (with >= min_calls)
      CLOSED ─────────────────────────────────────────────────────▶ OPEN
        ▲                                                            │ cooldown passed
        │ all probes succeeded                                       ▼
        └──────────────────────────── HALF_OPEN ◀────────────────────┘
                                        │ a probe failed: OPEN again, new cooldown
                                        ▼
                                       OPEN

Half-open admits ``half_open_probes`` calls at a time; the others see the target as open. The
breaker holds no timers: OPEN becomes HALF_OPEN when it is next looked at after the cooldown.
Thread-free and asyncio-safe: no method awaits, so each runs to completion.
"""

from __future__ import annotations

import enum

from ...config.policy import BreakerConfig
from ...core.clock import Clock
from ._window import Window

__all__ = ["BreakerState", "CircuitBreaker"]

_CALLS, _FAILURES = 0, 1


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """One target's breaker. ``acquire`` before a call, then exactly one of ``record_success``,
    ``record_failure`` or ``release`` (the call ended without a verdict, e.g. cancelled)."""

    def __init__(self, config: BreakerConfig, clock: Clock, name: str = "") -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probes = 0  # probes in flight while half-open
        self._probe_successes = 0
        self._window = Window(clock, config.window, 2)
        self.transitions: list[tuple[BreakerState, BreakerState]] = []  # for tests and metrics

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock.monotonic() >= self._opened_at + self.config.cooldown
        ):
            self._move(BreakerState.HALF_OPEN)
            self._probes = 0
            self._probe_successes = 0
        return self._state

    def allows(self) -> bool:
        """Would ``acquire`` admit a call now? (No side effect.)"""
        if not self.config.enabled or self.config.shadow:
            return True
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN:
            return self._probes < self.config.half_open_probes
        return False

    def acquire(self) -> bool:
        """Admit one call (taking a probe slot when half-open); False when the target is skipped."""
        if not self.allows():
            return False
        if self.config.enabled and self.state is BreakerState.HALF_OPEN:
            self._probes += 1
        return True

    def release(self) -> None:
        """The admitted call ended without saying anything about the target's health."""
        if self._state is BreakerState.HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def record_success(self) -> None:
        if not self.config.enabled:
            return
        self._consecutive = 0
        self._window.add(_CALLS)
        if self._state is BreakerState.HALF_OPEN:
            self._probes = max(self._probes - 1, 0)
            self._probe_successes += 1
            if self._probe_successes >= self.config.half_open_probes:
                self._window.clear()
                self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        if not self.config.enabled:
            return
        self._consecutive += 1
        self._window.add(_CALLS)
        self._window.add(_FAILURES)
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._open()
        elif state is BreakerState.CLOSED and self._tripped():
            self._open()

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(self._opened_at + self.config.cooldown - self._clock.monotonic(), 0.0)

    def _tripped(self) -> bool:
        n = self.config.consecutive_failures
        if n and self._consecutive >= n:
            return True
        if self.config.min_calls:
            calls, failures = self._window.totals()
            if calls >= self.config.min_calls and failures >= self.config.failure_rate * calls:
                return True
        return False

    def _open(self) -> None:
        self._opened_at = self._clock.monotonic()
        self._consecutive = 0
        self._probes = 0
        self._probe_successes = 0
        self._window.clear()
        self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        if state is not self._state:
            self.transitions.append((self._state, state))
            self._state = state
