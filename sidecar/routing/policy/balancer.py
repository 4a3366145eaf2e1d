"""Weighted choice among a group's healthy targets.

``round_robin`` is nginx's smooth weighted round robin: weights 5, 1, 1 give a a b a c a a
rather than a a a a a b c, and it is exact over every cycle of ``sum(weights)`` picks.
``random`` draws by weight from a seeded ``random.Random``. Both skip ineligible targets (an
open breaker, a target already tried for this request) and keep the others' proportions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

__all__ = ["WeightedBalancer"]


class WeightedBalancer:
    """Picks an index into ``weights``; deterministic given the seed and the calls made."""

    def __init__(
        self,
        weights: Sequence[int],
        *,
        mode: Literal["round_robin", "random"] = "round_robin",
        rng: random.Random | None = None,
    ) -> None:
        if not weights or any(w < 1 for w in weights):
            raise ValueError("weights: need at least one, each >= 1")
        self.weights = list(weights)
        self.mode = mode
        self._rng = rng or random.Random()
        self._current = [0] * len(weights)

    def pick(self, eligible: Sequence[bool] | None = None) -> int | None:
        """The chosen index among those with ``eligible[i]`` true (all when None); None if none."""
        indices = [i for i in range(len(self.weights)) if eligible is None or eligible[i]]
        if not indices:
            return None
        if len(indices) == 1:
            return indices[0]
        if self.mode == "random":
            return self._rng.choices(indices, weights=[self.weights[i] for i in indices])[0]
        total = 0
        best = indices[0]
        for i in indices:
            self._current[i] += self.weights[i]
            total += self.weights[i]
            if self._current[i] > self._current[best]:
                best = i
        self._current[best] -= total
        return best
