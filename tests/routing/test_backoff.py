"""Backoff: exponential delays with seeded jitter, and the upstream's Retry-After honoured."""

from __future__ import annotations

import random

from sidecar.routing.policy import Backoff, parse_retry_after

NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT


def test_exponential_backoff_without_jitter() -> None:
    backoff = Backoff(0.5, 8.0, 0.0)
    assert [backoff.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff.delay(10_000) == 8.0


def test_jitter_is_seeded_and_within_the_sdk_band() -> None:
    a = Backoff(0.5, 8.0, 0.25, rng=random.Random(7))
    b = Backoff(0.5, 8.0, 0.25, rng=random.Random(7))
    waits = [a.delay(n) for n in range(5)]
    assert waits == [b.delay(n) for n in range(5)]
    for n, wait in enumerate(waits):
        full = min(0.5 * 2**n, 8.0)
        assert 0.75 * full <= wait <= full


def test_retry_after_forms() -> None:
    assert parse_retry_after([("retry-after-ms", "1500"), ("retry-after", "9")], NOW) == 1.5
    assert parse_retry_after([("Retry-After", "2.5")], NOW) == 2.5
    assert parse_retry_after([("retry-after", "Tue, 14 Nov 2023 22:13:27 GMT")], NOW) == 7.0
    assert parse_retry_after([("retry-after", "Tue, 14 Nov 2023 22:00:00 GMT")], NOW) == 0.0
    assert parse_retry_after([("retry-after-ms", "soon"), ("retry-after", "3")], NOW) == 3.0
    assert parse_retry_after([("retry-after", "-1")], NOW) is None
    assert parse_retry_after([("retry-after", "whenever")], NOW) is None
    assert parse_retry_after([], NOW) is None


def test_wait_honours_retry_after_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 8.0, 0.0, max_retry_after=30.0)
    assert backoff.wait(0, [("retry-after-ms", "250")], NOW) == 0.25
    assert backoff.wait(0, [("retry-after", "Tue, 14 Nov 2023 22:13:30 GMT")], NOW) == 10.0
    assert backoff.wait(0, [("retry-after", "60")], NOW) is None  # longer than we hold a client
    assert backoff.wait(2, [], NOW) == 2.0
    ignoring = Backoff(0.5, 8.0, 0.0, honour_retry_after=False)
    assert ignoring.wait(1, [("retry-after", "60")], NOW) == 1.0
