"""The attempt observer's stream watcher (``sidecar.telemetry.attempt``), in process: an attempt
whose stream is left before its end is recorded once, whether the consumer closes the stream or
just drops it (as an async generator's finalizer would have done)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

from prometheus_client.parser import text_string_to_metric_families

from sidecar.config import build_config
from sidecar.core import Answer, Call, EventStream, StreamEvent, Target
from sidecar.telemetry import build_telemetry
from tests.conftest import MOCK_CONFIG


class _Upstream:
    name = "m"
    provider = "mock"


def _attempts(telemetry: object, outcome: str) -> float:
    telemetry.flush_metrics()  # type: ignore[attr-defined]
    rendered = telemetry.render_metrics()  # type: ignore[attr-defined]
    assert rendered is not None
    return sum(
        sample.value
        for family in text_string_to_metric_families(rendered[0].decode())
        for sample in family.samples
        if sample.name == "sidecar_upstream_duration_seconds_count" and sample.labels["outcome"] == outcome
    )


async def _batches() -> AsyncIterator[list[StreamEvent]]:
    yield [StreamEvent("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 3}}})]
    yield [StreamEvent("content_block_delta", {"type": "content_block_delta"})]
    yield [StreamEvent("message_stop", {"type": "message_stop"})]


def _watched(closing: list[str]) -> tuple[object, EventStream]:
    telemetry = build_telemetry(build_config({**MOCK_CONFIG, "telemetry": {"metrics": True}}), env={})
    request = telemetry.begin("http", "/v1/messages", {})
    call = Call(
        endpoint="messages",
        body={"model": "m", "max_tokens": 5, "messages": [], "stream": True},
        raw=None,
        model="m",
        stream=True,
        request_id="req_1",
        door="http",
        observer=request,
    )

    async def close() -> None:
        closing.append("closed")

    attempt = request.attempt(call, Target(upstream="m", model="m", route="*"), _Upstream())
    answer = attempt.answered(Answer(events=EventStream(_batches(), close=close), upstream="m"))
    assert answer.events is not None
    return telemetry, answer.events


async def test_a_stream_read_to_its_end_records_a_success() -> None:
    closing: list[str] = []
    telemetry, events = _watched(closing)
    assert [len(b) async for b in events.batches()] == [1, 1, 1]
    assert _attempts(telemetry, "success") == 1


async def test_a_stream_left_and_closed_records_one_cancelled_attempt() -> None:
    closing: list[str] = []
    telemetry, events = _watched(closing)
    async for _ in events.batches():
        break
    await events.aclose()
    await events.aclose()
    assert closing == ["closed"]
    assert _attempts(telemetry, "cancelled") == 1
    assert _attempts(telemetry, "success") == 0


async def test_a_stream_left_and_dropped_still_records_its_attempt() -> None:
    closing: list[str] = []
    telemetry, events = _watched(closing)
    batches = events.batches()
    async for _ in batches:
        break
    del events, batches  # never closed: the watcher's end is recorded when it is freed
    gc.collect()
    for _ in range(3):  # an async generator's finalizer closes it in a task of its own
        await asyncio.sleep(0)
    assert _attempts(telemetry, "cancelled") == 1
