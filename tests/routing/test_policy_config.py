from __future__ import annotations

import msgspec
import pytest

from sidecar.config.policy import (
    DEFAULT_RETRY_STATUSES,
    BreakerConfig,
    HopConfig,
    RetryConfig,
    RoutePolicyConfig,
    TargetGroup,
    TimeoutConfig,
    WeightedTarget,
)

YAML_LIKE = {
    "groups": [
        {"targets": [{"upstream": "anthropic", "weight": 3}, {"upstream": "anthropic-eu"}]},
        {"targets": [{"upstream": "bedrock", "model": "anthropic.claude-sonnet-4-6"}]},
    ],
    "fallback_on": [529],
    "retry": {"max_attempts": 3, "base_backoff": 0.25},
    "timeouts": {"first_byte": 30, "idle": 60},
}


def test_decodes_with_documented_defaults() -> None:
    cfg = msgspec.convert(YAML_LIKE, RoutePolicyConfig)
    assert cfg.groups[0].targets[0].weight == 3 and cfg.groups[0].targets[1].weight == 1
    assert cfg.groups[1].targets[0].model == "anthropic.claude-sonnet-4-6"
    assert cfg.retry.retry_on == DEFAULT_RETRY_STATUSES == (408, 409, 429, 500, 502, 503, 504, 529)
    assert cfg.fallback_on == (529,)
    assert cfg.retry.max_backoff == 8.0 and cfg.retry.jitter == 0.25
    assert cfg.hold_limit == 10.0 and cfg.balance == "round_robin"
    assert cfg.budget.max_retries_per_request == 2
    assert cfg.upstream_names() == ["anthropic", "anthropic-eu", "bedrock"]


def test_unknown_fields_are_errors() -> None:
    with pytest.raises(msgspec.ValidationError, match="retries"):
        msgspec.convert({**YAML_LIKE, "retries": {}}, RoutePolicyConfig)
    with pytest.raises(msgspec.ValidationError, match="wieght"):
        msgspec.convert({"groups": [{"targets": [{"upstream": "a", "wieght": 2}]}]}, RoutePolicyConfig)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"groups": []}, "groups: a route needs at least one target group"),
        ({"groups": [{"targets": []}]}, "targets: a group needs at least one target"),
        ({"groups": [{"targets": [{"upstream": "a", "weight": 0}]}]}, "weight: must be >= 1"),
        ({"groups": [{"targets": [{"upstream": "a"}, {"upstream": "a"}]}]}, "listed twice"),
        (
            {"groups": [{"targets": [{"upstream": "a"}]}], "timeouts": {"first_byte": 9, "total": 5}},
            "above total",
        ),
        ({"groups": [{"targets": [{"upstream": "a"}]}], "hold_limit": -1}, "hold_limit: must be >= 0"),
        ({"groups": [{"targets": [{"upstream": "a"}]}], "fallback_on": [999]}, "999 is not an HTTP status"),
        ({"groups": [{"targets": [{"upstream": "a"}]}], "retry": {"base_backoff": 9}}, "above max_backoff"),
    ],
)
def test_cross_field_rules_fail_at_load(data: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(data, RoutePolicyConfig)


def test_rules_also_hold_when_built_in_code() -> None:
    with pytest.raises(ValueError, match="jitter"):
        RetryConfig(jitter=1.5)
    with pytest.raises(ValueError, match="first_byte: 40 is above total"):
        TimeoutConfig(first_byte=40, total=30)
    with pytest.raises(ValueError, match="half_open_probes"):
        BreakerConfig(half_open_probes=0)
    with pytest.raises(ValueError, match="lower-case"):
        HopConfig(header="Sidecar-Hops")
    group = TargetGroup(targets=[WeightedTarget(upstream="a")])
    assert RoutePolicyConfig(groups=[group], hold_limit=0).hold_limit == 0
