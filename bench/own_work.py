"""``python -m bench.own_work``: the sidecar's own CPU per request, in process.

The HTTP app, the pipeline and telemetry (metrics on, or ``--no-metrics``) are driven directly
through ASGI (with the scope our own server gives it), over a handler upstream (``sidecar.upstreams.handler``) answering pre-built bytes as
the Anthropic adapter would hand them on: no uvicorn, no aiohttp, no sockets. So the figure is the
work the sidecar adds on top of its HTTP stack, which ``make bench`` cannot separate; compare two
builds in the same session (the machine's speed drifts), and profile with
``python -m cProfile -s tottime -m bench.own_work``.

JSON: one ``POST /v1/messages``; large: the same with an ~88 KB body as a coding agent sends it
(``bench.payloads``: 12 tools, 20 tool-use round trips with thinking). SSE: the same with ``stream: true``, answered by a stream of
``--deltas`` text deltas (one upstream read per event, raw bytes kept, as pass-through relays
them); µs per event is the request's CPU over its event count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import uvloop

from bench.payloads import large_request
from sidecar.config.load import build_config
from sidecar.core import Answer, Call, EventStream, StreamEvent, Target
from sidecar.http.app import HttpApp
from sidecar.http1.server import CANCEL_ON_DISCONNECT
from sidecar.pipeline import Pipeline
from sidecar.telemetry import build_telemetry
from sidecar.upstreams.handler import HandlerUpstream

_MESSAGE = {
    "id": "msg_bench",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 4},
}
_HEADERS = [
    ("request-id", "req_upstream"),
    ("content-type", "application/json"),
    ("anthropic-ratelimit-requests-limit", "4000"),
    ("anthropic-ratelimit-requests-remaining", "3999"),
]


def _sse(data: dict[str, Any]) -> tuple[str, bytes, bytes]:
    text = json.dumps(data).encode()
    return data["type"], b"event: " + data["type"].encode() + b"\ndata: " + text + b"\n\n", text


def _stream(deltas: int) -> list[tuple[str, bytes, bytes]]:
    start = {**_MESSAGE, "content": [], "stop_reason": None, "usage": {"input_tokens": 3, "output_tokens": 1}}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "word "}}
    events += [delta] * deltas
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": deltas},
        },
        {"type": "message_stop"},
    ]
    return [_sse(e) for e in events]


def _body(stream: bool, large: bool = False) -> bytes:
    if large:  # as a coding agent sends it (bench.payloads), answered as JSON
        return json.dumps({**large_request(), "stream": False}).encode()
    body = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
    return json.dumps({**body, "stream": True} if stream else body).encode()


async def measure(
    stream: bool, requests: int, deltas: int, metrics: bool, large: bool = False
) -> tuple[float, int]:
    """(CPU seconds per request, events per request) over ``requests`` after a warm-up."""
    message = json.dumps(_MESSAGE).encode()
    events = _stream(deltas)

    async def handler(call: Call, target: Target) -> Answer:
        if call.stream:

            async def batches() -> AsyncIterator[list[StreamEvent]]:
                for name, raw, data in events:
                    yield [StreamEvent(name, raw=raw, data_bytes=data)]

            return Answer(events=EventStream(batches(), None), headers=list(_HEADERS), upstream="a")
        return Answer(raw=message, headers=list(_HEADERS), upstream="a")

    config = build_config(
        {
            "upstreams": {"a": {"provider": "anthropic", "base_url": "http://127.0.0.1:9", "api_key": "k"}},
            "routes": [{"match": "*", "upstream": "a"}],
            "telemetry": {"metrics": metrics},
        }
    )
    pipeline = Pipeline(config, adapters={"a": HandlerUpstream("a", handler)})
    telemetry = build_telemetry(config)
    app = HttpApp(lambda: pipeline, max_body=32 << 20, ready=lambda: True, telemetry=telemetry)
    body = _body(stream, large)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"x-api-key", b"sk-bench"),
            (b"content-type", b"application/json"),
            (b"anthropic-version", b"2023-06-01"),
            (b"content-length", str(len(body)).encode()),
            (b"user-agent", b"Anthropic/Python 2.14.0"),
        ],
        # As the sidecar's own server (the default) serves it: the server cancels a request
        # whose client left, so the app runs no watcher task of its own.
        "extensions": {CANCEL_ON_DISCONNECT: {}},
    }

    async def one() -> None:
        received = False
        done = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await app(scope, receive, send)

    for _ in range(min(requests, 500)):
        await one()
    started = time.process_time()
    for _ in range(requests):
        await one()
    spent = time.process_time() - started
    await telemetry.aclose()
    await pipeline.aclose()
    return spent / requests, len(events) if stream else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.own_work", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "mode",
        nargs="*",
        help="json, sse, large (an ~88 KB request, as a coding agent sends it); default json and sse",
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--deltas", type=int, default=50)
    parser.add_argument("--no-metrics", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the lowest is reported")
    args = parser.parse_args()
    modes = args.mode or ["json", "sse"]
    if not set(modes) <= {"json", "sse", "large"}:
        parser.error("modes are json, sse and large")
    for mode in modes:
        runs = [
            uvloop.run(
                measure(mode == "sse", args.requests, args.deltas, not args.no_metrics, mode == "large")
            )
            for _ in range(args.repeat)
        ]
        per, events = min(runs)
        line = f"{mode}: {per * 1e6:.1f} µs CPU per request"
        if mode == "sse":
            line += f", {per * 1e6 / events:.2f} µs per event ({events} events)"
        print(line + (" (metrics off)" if args.no_metrics else " (metrics on)"))


if __name__ == "__main__":
    main()
