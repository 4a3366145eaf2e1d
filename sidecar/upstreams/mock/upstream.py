"""``MockUpstream``: a plan answered as a Message or as a stream of events, with its waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from ...core import Answer, Call, EventStream, StreamEvent, Target, Upstream
from ...errors import NoRoute, SidecarError
from .config import MockConfig
from .directives import make_error, parse_directives
from .plan import Plan, make_plan
from .request import last_user_text, messages_of
from .text import display_name, estimate_input_tokens

__all__ = ["MockUpstream"]

# ModelInfo values shared by every listed model.
_CREATED_AT = "2025-01-01T00:00:00Z"
_MAX_INPUT_TOKENS = 200_000
_MAX_TOKENS = 64_000

# The sleep every wait goes through (a module global so tests can record the waits).
_sleep = asyncio.sleep


# --- streaming -------------------------------------------------------------------------------


def _event(data: dict[str, Any]) -> StreamEvent:
    return StreamEvent(data["type"], data)


async def _wait(ms: float) -> None:
    if ms > 0:
        await _sleep(ms / 1000)


async def _events(
    plan: Plan, ttft_ms: float, gap_ms: float, fail: SidecarError | None, fail_after: int
) -> AsyncIterator[StreamEvent]:
    """The spec's event grammar for ``plan``; ``fail`` ends it with an ``error`` event instead."""
    fail_event = (
        None
        if fail is None
        else _event({"type": "error", "error": {"type": fail.error_type, "message": fail.message}})
    )
    yield _event({"type": "message_start", "message": plan.message(started=True)})
    sent = 0
    for index, block in enumerate(plan.blocks):
        yield _event({"type": "content_block_start", "index": index, "content_block": block.start})
        if index == 0:
            yield _event({"type": "ping"})
        for delta in block.deltas:
            if fail_event is not None and sent == fail_after:
                yield fail_event
                return
            await _wait(ttft_ms if sent == 0 else gap_ms)
            yield _event({"type": "content_block_delta", "index": index, "delta": delta})
            sent += 1
        yield _event({"type": "content_block_stop", "index": index})
    if not plan.blocks:
        yield _event({"type": "ping"})
    if fail_event is not None:
        yield fail_event
        return
    if sent == 0:
        await _wait(ttft_ms)
    yield _event(
        {
            "type": "message_delta",
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence},
            "usage": {"output_tokens": plan.output_tokens},
        }
    )
    yield _event({"type": "message_stop"})


# --- the upstream ----------------------------------------------------------------------------


class MockUpstream(Upstream):
    """A deterministic built-in model (see the package docstring for what it answers and why)."""

    provider = "mock"

    def __init__(self, name: str, config: MockConfig | None = None) -> None:
        super().__init__(name)
        self.config = config if config is not None else MockConfig()

    async def send(self, call: Call, target: Target) -> Answer:
        body = call.body if isinstance(call.body, dict) else {}
        directives = parse_directives(last_user_text(messages_of(body)))
        if directives.error is not None:
            raise make_error(directives.error)
        if call.endpoint == "count_tokens":
            return Answer(message={"input_tokens": estimate_input_tokens(body)}, upstream=self.name)
        if call.endpoint != "messages":
            raise NoRoute(f"upstream {self.name!r} (mock) does not serve {call.endpoint}")
        plan = make_plan(body, target.model, self.config, directives)
        ttft_ms = self.config.ttft_ms if directives.ttft_ms is None else directives.ttft_ms
        gap_ms = self.config.gap_ms if directives.gap_ms is None else directives.gap_ms
        fail = None if directives.stream_error is None else make_error(directives.stream_error)
        if call.stream:
            events = _events(plan, ttft_ms, gap_ms, fail, directives.after)
            return Answer(events=EventStream.of_events(events), upstream=self.name)
        if fail is not None:
            raise fail
        await _wait(ttft_ms + gap_ms * max(0, plan.delta_count() - 1))
        return Answer(message=plan.message(), upstream=self.name)

    async def list_models(self, call_headers: dict[str, str]) -> list[dict[str, Any]]:
        return [
            {
                "type": "model",
                "id": model_id,
                "display_name": display_name(model_id),
                "created_at": _CREATED_AT,
                "max_input_tokens": _MAX_INPUT_TOKENS,
                "max_tokens": _MAX_TOKENS,
            }
            for model_id in self.config.models
        ]
