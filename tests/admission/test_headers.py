"""The anthropic-ratelimit-* headers: exact names, RFC 3339 resets, retry-after, upstream- renaming."""

from __future__ import annotations

import re
from datetime import datetime

from sidecar.admission.headers import (
    grant_headers,
    ratelimit_headers,
    refusal_headers,
    rename_upstream_headers,
    retry_after_seconds,
    rfc3339,
)
from sidecar.admission.limiter import Grant, LimitState, Refusal
from sidecar.config.admission import Limits

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_rfc3339() -> None:
    assert rfc3339(NOW) == "2023-11-14T22:13:20Z"
    assert rfc3339(NOW + 0.2) == "2023-11-14T22:13:21Z"  # rounded up: never earlier than the reset
    assert datetime.fromisoformat(rfc3339(NOW + 90)).timestamp() == NOW + 90


def test_all_dimensions_exact_names_and_order() -> None:
    states = {
        "requests": LimitState(50, 49, NOW + 1.2),
        "input_tokens": LimitState(2_000_000, 1_999_000, NOW + 0.03),
        "output_tokens": LimitState(400_000, 100, NOW + 59),
        "tokens": LimitState(100_000, 99_000, NOW + 0.6),
    }
    headers = ratelimit_headers(states)
    assert [name for name, _ in headers] == [
        f"anthropic-ratelimit-{dim}-{part}"
        for dim in ("requests", "tokens", "input-tokens", "output-tokens")
        for part in ("limit", "remaining", "reset")
    ]
    values = dict(headers)
    assert values["anthropic-ratelimit-requests-limit"] == "50"
    assert values["anthropic-ratelimit-requests-remaining"] == "49"
    assert values["anthropic-ratelimit-requests-reset"] == "2023-11-14T22:13:22Z"
    assert values["anthropic-ratelimit-tokens-limit"] == "100000"
    assert values["anthropic-ratelimit-output-tokens-remaining"] == "100"
    assert all(RFC3339.match(v) for k, v in headers if k.endswith("-reset"))


def test_tokens_headers_follow_the_most_restrictive_without_a_combined_limit() -> None:
    states = {
        "input_tokens": LimitState(1000, 900, NOW + 6),
        "output_tokens": LimitState(200, 20, NOW + 54),
    }
    values = dict(ratelimit_headers(states))
    assert values["anthropic-ratelimit-tokens-limit"] == "200"
    assert values["anthropic-ratelimit-tokens-remaining"] == "20"
    assert "anthropic-ratelimit-requests-limit" not in values


def test_only_limited_dimensions_appear() -> None:
    assert ratelimit_headers({}) == []
    names = [n for n, _ in ratelimit_headers({"requests": LimitState(5, 0, NOW)})]
    assert names == [
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ]


def test_grant_headers() -> None:
    grant = Grant(
        key="k",
        limits=Limits(requests_per_minute=5),
        lease="m1",
        states={"requests": LimitState(5, 4, NOW + 12)},
        input_charged=10,
    )
    assert dict(grant_headers(grant))["anthropic-ratelimit-requests-remaining"] == "4"


def test_refusal_headers_carry_retry_after() -> None:
    refusal = Refusal(
        key="k",
        reason="requests",
        message="over",
        retry_after=11.2,
        states={"requests": LimitState(5, 0, NOW + 60)},
    )
    headers = refusal_headers(refusal)
    assert headers[0] == ("retry-after", "12")
    values = dict(headers)
    assert values["anthropic-ratelimit-requests-remaining"] == "0"
    assert "x-should-retry" not in values
    assert retry_after_seconds(Refusal(key="k", reason="requests", message="", retry_after=0.01)) == 1
    assert retry_after_seconds(Refusal(key="k", reason="requests", message="", retry_after=3.0)) == 3


def test_a_cost_over_the_limit_says_do_not_retry() -> None:
    refusal = Refusal(key="k", reason="tokens", message="never", retry_after=0, retryable=False)
    assert ("x-should-retry", "false") in refusal_headers(refusal)
    down = Refusal(key="k", reason="unavailable", message="down", retry_after=1, retryable=False)
    assert ("x-should-retry", "false") not in refusal_headers(down)


def test_upstream_ratelimit_headers_move_under_a_prefix() -> None:
    upstream = [
        ("content-type", "application/json"),
        ("Anthropic-RateLimit-Requests-Limit", "4000"),
        ("anthropic-ratelimit-tokens-reset", "2023-11-14T22:14:00Z"),
        ("anthropic-priority-input-tokens-limit", "100"),
        ("retry-after", "3"),
        ("request-id", "req_1"),
    ]
    assert rename_upstream_headers(upstream) == [
        ("content-type", "application/json"),
        ("upstream-anthropic-ratelimit-requests-limit", "4000"),
        ("upstream-anthropic-ratelimit-tokens-reset", "2023-11-14T22:14:00Z"),
        ("upstream-anthropic-priority-input-tokens-limit", "100"),
        ("retry-after", "3"),
        ("request-id", "req_1"),
    ]
