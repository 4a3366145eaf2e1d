"""The sidecar in process: the real pipeline, doors and telemetry, with upstreams that are Python
handlers (``sidecar.upstreams.handler``), driven by the official SDK.

- ``pipeline(config, **handlers)``: a ``Pipeline`` to call directly with Calls.
- ``asgi_client(app)``: an ``AsyncAnthropic`` whose requests go straight into the HTTP app (the
  SDK's HTTP client, httpx2, and its ``ASGITransport``: it buffers whole responses, so streams arrive at once; fine for what a
  stream says, not for its timing, disconnects or mid-stream behaviour).
- ``running(config, **handlers)``: a ``Runtime`` on free loopback ports in this event loop, for
  streams that need a real socket; no subprocess.
- ``ThreadedSidecar(*cli_args)``: what ``python -m sidecar ARGS`` serves, on a loop in a thread,
  for synchronous clients (the SDK, httpx, grpc) that need only its sockets.

Streams the doors emit here are judged by the grammar checker too (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import httpx2
import msgspec
import uvloop

from sidecar.cli import config_from_argv
from sidecar.config import Config
from sidecar.config.load import build_config
from sidecar.config.model import AdminListener, GrpcListener, HttpListener, Listeners
from sidecar.core import Answer, Call, EventStream, StreamEvent, Target, Upstream
from sidecar.http.app import HttpApp
from sidecar.pipeline import Pipeline
from sidecar.runtime import Runtime
from sidecar.upstreams.handler import Handler, HandlerUpstream

__all__ = [
    "ThreadedSidecar",
    "asgi_client",
    "config_of",
    "events_answer",
    "http_app",
    "pipeline",
    "running",
]


def config_of(config: Config | Mapping[str, Any]) -> Config:
    return config if isinstance(config, Config) else build_config(dict(config))


def _adapters(handlers: Mapping[str, Handler | Upstream]) -> dict[str, Upstream]:
    return {name: h if isinstance(h, Upstream) else HandlerUpstream(name, h) for name, h in handlers.items()}


def pipeline(config: Config | Mapping[str, Any], **handlers: Handler | Upstream) -> Pipeline:
    return Pipeline(config_of(config), adapters=_adapters(handlers))


def http_app(p: Pipeline, *, max_body: int = 32 * 1024 * 1024) -> HttpApp:
    return HttpApp(lambda: p, max_body=max_body, ready=lambda: True)


def asgi_client(app: HttpApp, **options: Any) -> anthropic.AsyncAnthropic:
    transport = httpx2.ASGITransport(app=app)
    return anthropic.AsyncAnthropic(
        base_url="http://sidecar.test",
        api_key=options.pop("api_key", "sk-in-process"),
        max_retries=options.pop("max_retries", 0),
        http_client=httpx2.AsyncClient(transport=transport, base_url="http://sidecar.test"),
        **options,
    )


@asynccontextmanager
async def running(
    config: Config | Mapping[str, Any], *, server: str = "native", **handlers: Handler | Upstream
) -> AsyncIterator[Runtime]:
    """A Runtime serving HTTP (and gRPC) on free loopback ports in this loop; admin off;
    ``server``: the HTTP listener's server (``uvicorn``: the fallback)."""
    base = config_of(config)
    base = msgspec.structs.replace(
        base,
        listeners=Listeners(http=HttpListener(port=0, server=server), grpc=GrpcListener(port=0)),
        admin=AdminListener(enabled=False),
    )
    runtime = Runtime(base, adapters=_adapters(handlers))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop(0)


def events_answer(*events: dict[str, Any]) -> Answer:
    """An Answer streaming ``events`` (each a dict with its ``type``) as one batch each."""

    async def gen() -> AsyncIterator[StreamEvent]:
        for data in events:
            yield StreamEvent(data["type"], data)

    return Answer(events=EventStream.of_events(gen()), upstream="handler")


async def message_answer(call: Call, target: Target, text: str = "Hi from a handler.") -> Answer:
    """A whole Message for ``call``, as an Anthropic upstream would answer it."""
    return Answer(
        message={
            "id": "msg_handler",
            "type": "message",
            "role": "assistant",
            "model": target.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 4},
        },
        upstream="handler",
    )


class ThreadedSidecar:
    """``python -m sidecar ARGS`` in this process: the config the command line builds from
    ``args`` (free ports), served by a ``Runtime`` on a uvloop event loop in a daemon thread, as
    the CLI runs it. For tests that need only its sockets; a test that reads the process's output,
    sends it signals or reloads it starts a ``SidecarProcess`` (tests/conftest.py) instead."""

    def __init__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        adapters: Mapping[str, Upstream] | None = None,
    ) -> None:
        saved = {k: os.environ.get(k) for k in env or {}}
        os.environ.update(env or {})
        try:
            config = config_from_argv(["--http-port", "0", "--grpc-port", "0", "--admin-port", "0", *args])
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sidecar-in-process", daemon=True)
        self._thread.start()
        self.runtime: Runtime = self._run(self._start(config, adapters))
        host = config.listeners.host
        rt = self.runtime
        self.http_url = f"http://{host}:{rt.http_port}" if rt.http_port else ""
        self.grpc_target = f"{host}:{rt.grpc_port}" if rt.grpc_port else ""
        self.admin_url = f"http://{config.admin.host}:{rt.admin_port}" if rt.admin_port else ""

    def _run(self, coro: Any, timeout: float = 20) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @staticmethod
    async def _start(config: Config, adapters: Mapping[str, Upstream] | None) -> Runtime:
        runtime = Runtime(config, adapters=adapters)
        try:
            await runtime.start()
        except BaseException:
            await runtime.stop(0)
            raise
        return runtime

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self._run(self.runtime.stop(1.0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
