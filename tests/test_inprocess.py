"""The in-process seam itself: handler upstreams behind the real pipeline and HTTP app, driven by
the SDK, and the stream-grammar check judging streams emitted in this process."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from sidecar.core import Answer, Call, Target, grammar
from sidecar.http.app import HttpApp
from tests.conftest import MOCK_CONFIG, STREAM_VIOLATIONS
from tests.core.test_grammar import START
from tests.inprocess import asgi_client, events_answer, http_app, message_answer, pipeline, running

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}


async def test_the_sdk_reaches_a_handler_through_the_real_app() -> None:
    seen: list[tuple[Call, Target]] = []

    async def handler(call: Call, target: Target) -> Answer:
        seen.append((call, target))
        return await message_answer(call, target)

    p = pipeline(MOCK_CONFIG, m=handler)
    client = asgi_client(http_app(p))
    message = await client.messages.create(**BODY)
    assert message.content[0].text == "Hi from a handler."  # type: ignore[union-attr]
    assert message._request_id and message._request_id.startswith("req_")
    ((call, target),) = seen
    assert target == Target("m", "claude-sonnet-4-6", "*") and call.door == "http"
    assert call.raw is not None and "sk-in-process" in call.headers["authorization"]
    with pytest.raises(anthropic.NotFoundError):
        await client.models.retrieve("no-such-model")
    await p.aclose()


async def test_in_process_streams_are_judged_by_the_grammar_checker() -> None:
    """A stream that breaks the grammar, emitted by the in-process HTTP door over a real socket,
    lands in the file the autouse fixture reads, so it would fail the test that caused it."""
    assert grammar.CHECK_LOG == str(STREAM_VIOLATIONS)

    async def broken(call: Call, target: Target) -> Answer:
        # A delta for a block that never started.
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}
        return events_answer(START, delta, {"type": "message_stop"})

    before = STREAM_VIOLATIONS.stat().st_size if STREAM_VIOLATIONS.exists() else 0
    try:
        async with running(MOCK_CONFIG, m=broken) as runtime:
            # Raw HTTP: the SDK's own accumulator would choke on this stream first.
            async with httpx.AsyncClient() as client:
                r = await client.post(
                    f"http://127.0.0.1:{runtime.http_port}/v1/messages",
                    json={**BODY, "stream": True},
                    headers={"x-api-key": "k"},
                )
            assert r.status_code == 200 and b"content_block_delta" in r.content
        with STREAM_VIOLATIONS.open("rb") as f:
            f.seek(before)
            found = f.read().decode()
        assert "content_block_delta" in found and "http req_" in found
    finally:
        # This test caused the violation on purpose: take it back out for the autouse fixture.
        with STREAM_VIOLATIONS.open("r+b") as f:
            f.truncate(before)


async def test_a_served_request_leaves_no_reference_cycle() -> None:
    """Telemetry's request observer and the Call must not hold each other once the request
    ended: a cycle makes every request's objects wait for the cycle collector (profiled at about
    10 µs of CPU a request under load)."""
    import gc

    from sidecar.config.load import build_config
    from sidecar.telemetry import build_telemetry
    from sidecar.telemetry.request import LiveRequest

    config = build_config({**MOCK_CONFIG, "telemetry": {"metrics": True}})
    p = pipeline(config, m=message_answer)
    app = HttpApp(lambda: p, max_body=1 << 20, ready=lambda: True, telemetry=build_telemetry(config))
    client = asgi_client(app)
    await client.messages.create(**BODY)  # warm: first-use caches
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            await client.messages.create(**BODY)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        cyclic = [o for o in gc.garbage if isinstance(o, (LiveRequest, Call))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []
    await p.aclose()
