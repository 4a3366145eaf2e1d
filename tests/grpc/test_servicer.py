"""The gRPC servicer in process, with a stand-in for grpc.aio's context: what it does at the
edges of a call that a socket cannot time precisely."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from sidecar.config.load import build_config
from sidecar.grpc import convert
from sidecar.grpc.servicer import MessagesService
from sidecar.lifecycle import Lifecycle
from sidecar.pipeline import Pipeline
from sidecar.telemetry import NOOP_TELEMETRY

KEY = "sk-servicer-test"


class CancelledAtMetadata:
    """A call whose client goes away just as the answer's metadata would be sent."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", KEY),)

    def time_remaining(self) -> float | None:
        return None

    async def send_initial_metadata(self, metadata: Any) -> None:
        raise asyncio.CancelledError

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


async def test_a_stream_cancelled_before_its_first_event_closes_it_and_frees_the_lease() -> None:
    # Found by the cancellation storm (python -m reliability storm): a gRPC client that left
    # just as its stream's metadata was sent kept its key's concurrency lease held for good,
    # and the upstream request open until garbage collection.
    config = build_config(
        {
            "upstreams": {"m": {"provider": "mock"}},
            "routes": [{"match": "*", "upstream": "m"}],
            "admission": {
                "queue": {"max_wait": 0},
                "tiers": {"one": {"concurrency": 1}},
                "keys": [{"name": "a", "sha256": hashlib.sha256(KEY.encode()).hexdigest(), "tier": "one"}],
            },
        }
    )
    pipeline = Pipeline(config)
    service = MessagesService(Lifecycle(pipeline), NOOP_TELEMETRY)
    request = convert.request_to_proto(
        {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert pipeline.admission is not None
    for _ in range(2):  # with the lease leaked, the second would be refused (concurrency 1)
        with pytest.raises(asyncio.CancelledError):
            async for _event in service.StreamMessage(request, CancelledAtMetadata()):
                pass
        assert pipeline.admission.limiter.held_by_key() == {}
    await pipeline.aclose()
