"""A fake Anthropic API server in a background thread, for tests.

It records every request exactly as received (method, path, query, headers, body bytes) and
answers with a plan chosen per request: JSON, SSE chunks (written as given, so tests can check
byte fidelity), an error, or a hang that only ends when the client closes the connection (which
it records, so tests can prove the sidecar cancelled the upstream call).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes._server import ThreadedServer

MESSAGE = {
    "id": "msg_01FAKE",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "Hello from the fake upstream."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 7,
    },
}


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def text_stream(
    text: str = "Hi there.", model: str = "claude-sonnet-4-6", extra: list[bytes] | None = None
) -> list[bytes]:
    """A spec-shaped streamed text answer, one chunk per event (plus ``extra`` before the end)."""
    start = dict(
        MESSAGE, content=[], stop_reason=None, model=model, usage={"input_tokens": 12, "output_tokens": 1}
    )
    chunks = [
        sse("message_start", {"type": "message_start", "message": start}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        sse("ping", {"type": "ping"}),
    ]
    for i in range(0, len(text), 4):
        delta = {"type": "text_delta", "text": text[i : i + 4]}
        chunks.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    chunks.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    chunks.extend(extra or [])
    chunks.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        )
    )
    chunks.append(sse("message_stop", {"type": "message_stop"}))
    return chunks


@dataclass
class Plan:
    """How to answer one request."""

    status: int = 200
    body: bytes | None = None  # JSON body (default: MESSAGE, or a streamed answer when stream=true)
    chunks: list[bytes] | None = None  # SSE chunks, written one by one
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer; wait for the client to close
    hang_after: int | None = None  # stream this many chunks, then hang
    reset_after: int | None = None  # stream this many chunks, then drop the connection
    cut_body_after: int | None = None  # JSON: announce the whole length, send this many bytes, drop
    chunk_delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    closed_early: bool = False  # the client closed the connection before the answer was complete

    def json(self) -> Any:
        return json.loads(self.body)


class FakeAnthropic(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Recorded] = []
        self.planner: Callable[[Recorded], Plan] | None = None

    def reset(self, planner: Callable[[Recorded], Plan] | None = None) -> None:
        with self._lock:
            self.requests.clear()
        self.planner = planner

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rec = Recorded(request.method, request.path, request.query_string, dict(request.headers), body)
        with self._lock:
            self.requests.append(rec)
        plan = self.planner(rec) if self.planner else self._default_plan(rec)
        try:
            return await self._answer(request, rec, plan)
        except (asyncio.CancelledError, ConnectionResetError):
            rec.closed_early = True
            raise

    def _default_plan(self, rec: Recorded) -> Plan:
        if rec.path == "/v1/messages" and rec.body:
            if json.loads(rec.body).get("stream"):
                return Plan(chunks=text_stream())
        if rec.path == "/v1/messages/count_tokens":
            return Plan(body=b'{"input_tokens":42}')
        if rec.path == "/v1/models":
            data = [
                {
                    "type": "model",
                    "id": f"claude-fake-{i}",
                    "display_name": f"Fake {i}",
                    "created_at": "2026-01-01T00:00:00Z",
                }
                for i in range(5)
            ]
            return Plan(
                body=json.dumps(
                    {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
                ).encode()
            )
        return Plan()

    async def _answer(self, request: web.Request, rec: Recorded, plan: Plan) -> web.StreamResponse:
        headers = {"request-id": "req_fake_upstream", **plan.headers}
        if plan.hang:
            await asyncio.sleep(3600)
        if plan.chunks is None:
            body = plan.body if plan.body is not None else json.dumps(MESSAGE).encode()
            if plan.cut_body_after is not None:
                cut = web.StreamResponse(
                    status=plan.status, headers={"content-type": "application/json", **headers}
                )
                cut.content_length = len(body)
                await cut.prepare(request)
                await cut.write(body[: plan.cut_body_after])
                assert request.transport is not None
                request.transport.abort()
                return cut
            return web.Response(
                status=plan.status, body=body, headers={"content-type": "application/json", **headers}
            )
        resp = web.StreamResponse(
            status=plan.status, headers={"content-type": "text/event-stream; charset=utf-8", **headers}
        )
        await resp.prepare(request)
        for i, chunk in enumerate(plan.chunks):
            if plan.hang_after is not None and i == plan.hang_after:
                await asyncio.sleep(3600)
            if plan.reset_after is not None and i == plan.reset_after:
                assert request.transport is not None
                request.transport.abort()
                return resp
            await resp.write(chunk)
            if plan.chunk_delay:
                await asyncio.sleep(plan.chunk_delay)
        await resp.write_eof()
        return resp
