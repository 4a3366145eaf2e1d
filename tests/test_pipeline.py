"""The request pipeline in process: a ``Pipeline`` built from a config, driven with Calls."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from sidecar.config.load import build_config
from sidecar.core import Call
from sidecar.errors import RateLimited
from sidecar.hops import HopLimitExceeded
from sidecar.pipeline import Pipeline

KEY = "sk-pipeline-test-key"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def make_call(headers: dict[str, str], body: dict[str, Any] = BODY, endpoint: str = "messages") -> Call:
    return Call(
        endpoint=endpoint,
        body=dict(body),
        raw=None,
        model=str(body["model"]),
        stream=False,
        request_id="req_pipeline_test",
        door="http",
        headers=dict(headers),
    )


def gated(**tier: Any) -> Pipeline:
    return Pipeline(
        build_config(
            {
                "upstreams": {"m": {"provider": "mock"}},
                "routes": [{"match": "*", "upstream": "m"}],
                "hops": {"max_hops": 3},
                "admission": {
                    "queue": {"max_wait": 0},
                    "tiers": {"one": tier},
                    "keys": [
                        {"name": "a", "sha256": hashlib.sha256(KEY.encode()).hexdigest(), "tier": "one"}
                    ],
                },
            }
        )
    )


@pytest.mark.parametrize("endpoint", ["messages", "count_tokens"])
async def test_a_looping_request_is_refused_before_it_spends_the_key(endpoint: str) -> None:
    pipeline = gated(requests_per_minute=1)
    try:
        send = pipeline.messages if endpoint == "messages" else pipeline.count_tokens
        with pytest.raises(HopLimitExceeded):
            await send(make_call({"x-api-key": KEY, "sidecar-hops": "3"}, endpoint=endpoint))
        # The key's one request a minute is still there, and then it is spent.
        await send(make_call({"x-api-key": KEY}, endpoint=endpoint))
        with pytest.raises(RateLimited):
            await send(make_call({"x-api-key": KEY}, endpoint=endpoint))
    finally:
        await pipeline.aclose()
