"""A sliding window of counters in fixed buckets, on a policy clock (no timers, no threads)."""

from __future__ import annotations

from ...core.clock import Clock

__all__ = ["Window"]


class Window:
    """Counts of named events over the last ``span`` seconds, in ``buckets`` slices.

    Old slices are dropped lazily when the window is read or written, so an idle window costs
    nothing. Precision is one slice (``span / buckets`` seconds).
    """

    def __init__(self, clock: Clock, span: float, fields: int, buckets: int = 10) -> None:
        self._clock = clock
        self._width = span / buckets
        self._buckets = buckets
        self._fields = fields
        self._slots: list[list[int]] = [[0] * fields for _ in range(buckets)]
        self._epochs: list[int] = [-1] * buckets

    def _slot(self) -> list[int]:
        epoch = int(self._clock.monotonic() // self._width)
        index = epoch % self._buckets
        if self._epochs[index] != epoch:
            self._epochs[index] = epoch
            self._slots[index] = [0] * self._fields
        return self._slots[index]

    def add(self, field: int, n: int = 1) -> None:
        self._slot()[field] += n

    def totals(self) -> list[int]:
        """The sums of each field over the live slices."""
        epoch = int(self._clock.monotonic() // self._width)
        out = [0] * self._fields
        for index in range(self._buckets):
            if epoch - self._epochs[index] < self._buckets:
                for f, value in enumerate(self._slots[index]):
                    out[f] += value
        return out

    def clear(self) -> None:
        self._epochs = [-1] * self._buckets
