"""How long to wait before a retry: the upstream's ``retry-after-ms`` / ``retry-after`` when it
sent one, else exponential backoff with jitter, the SDKs' own formula (spec section 6)::

    wait = min(base * 2**retries, cap) * uniform(1 - jitter, 1)
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from email.utils import parsedate_to_datetime

__all__ = ["Backoff", "parse_retry_after"]


def parse_retry_after(headers: Iterable[tuple[str, str]], now: float) -> float | None:
    """Seconds the upstream asked to wait, or None when it asked nothing readable.

    ``retry-after-ms`` (milliseconds) wins; then ``retry-after`` as seconds (a float is
    accepted), then as an HTTP date, relative to ``now`` (wall-clock seconds since the epoch).
    A date in the past is 0; negative or non-finite values are ignored. Names are matched
    case-insensitively.
    """
    ms: str | None = None
    after: str | None = None
    for name, value in headers:
        lname = name.lower()
        if lname == "retry-after-ms" and ms is None:
            ms = value
        elif lname == "retry-after" and after is None:
            after = value
    if ms is not None:
        seconds = _number(ms)
        if seconds is not None:
            return seconds / 1000.0
    if after is None:
        return None
    seconds = _number(after)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(after.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT by definition
        return None
    return max(when.timestamp() - now, 0.0)


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


class Backoff:
    """Retry waits. ``rng`` makes the jitter deterministic in tests (a seeded ``random.Random``)."""

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 8.0,
        jitter: float = 0.25,
        *,
        honour_retry_after: bool = True,
        max_retry_after: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.honour_retry_after = honour_retry_after
        self.max_retry_after = max_retry_after
        self._rng = rng or random.Random()

    def delay(self, retries: int) -> float:
        """The exponential wait before retry number ``retries + 1`` (``retries`` already made)."""
        wait = min(self.base * 2.0 ** min(retries, 62), self.cap)
        if self.jitter:
            wait *= 1.0 - self.jitter * self._rng.random()
        return wait

    def wait(self, retries: int, headers: Iterable[tuple[str, str]], now: float) -> float | None:
        """The wait before the next retry: the upstream's ask when honoured, else ``delay``.

        None when the upstream asked for more than ``max_retry_after``: the caller should not
        retry that target now (another target may be tried, or the error returned with its ask).
        """
        if self.honour_retry_after:
            asked = parse_retry_after(headers, now)
            if asked is not None:
                return None if asked > self.max_retry_after else asked
        return self.delay(retries)
