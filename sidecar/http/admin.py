"""The admin listener's ASGI app, apart from the API ports: ``/metrics``, ``/healthz``,
``/readyz`` (GET and HEAD).

``GET /metrics``  the Prometheus text exposition (404 when metrics are off); rendered in a worker
                  thread so a large scrape never stalls the event loop
``/healthz`` and ``/readyz`` answer as the API listener does (``sidecar.http.health``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..telemetry import Telemetry
from .health import HEALTH_PATHS, health, lifespan

__all__ = ["AdminApp"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"


class AdminApp:
    """A raw ASGI app (no framework). ``ready`` is read per request."""

    def __init__(self, telemetry: Telemetry, ready: Callable[[], bool]) -> None:
        self._telemetry = telemetry
        self._ready = ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, _TEXT, b"use GET\n", head, [(b"allow", b"GET, HEAD")])
        elif path == "/metrics":
            self._telemetry.flush_metrics()  # on this (the requests') thread, then render off it
            rendered = await asyncio.to_thread(self._telemetry.render_metrics)
            if rendered is None:
                await _respond(send, 404, _TEXT, b"metrics are off (telemetry.metrics: false)\n", head)
            else:
                body, content_type = rendered
                await _respond(send, 200, content_type.encode(), body, head)
        elif path in HEALTH_PATHS:
            status, body = health(path, self._ready)
            await _respond(send, status, _JSON, body, head)
        else:
            await _respond(send, 404, _TEXT, b"not found; try /metrics, /healthz, /readyz\n", head)


async def _respond(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    head: bool,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
