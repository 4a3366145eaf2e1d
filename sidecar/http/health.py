"""Liveness and readiness, answered the same way by the API listener and the admin listener,
and the ASGI lifespan handshake both apps share.

``GET /healthz``  200 ``{"status":"ok"}`` while the process serves
``GET /readyz``   200 ``{"status":"ready"}`` once every listener is up; 503
                  ``{"status":"not ready"}`` before that and while draining
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["HEALTH_PATHS", "health", "lifespan"]

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
_OK = b'{"status":"ok"}'
_READY = b'{"status":"ready"}'
_NOT_READY = b'{"status":"not ready"}'


def health(path: str, ready: Callable[[], bool]) -> tuple[int, bytes]:
    """The status and JSON body for ``/healthz`` or ``/readyz`` (``path`` in ``HEALTH_PATHS``)."""
    if path == "/healthz":
        return 200, _OK
    return (200, _READY) if ready() else (503, _NOT_READY)


async def lifespan(
    receive: Callable[[], Awaitable[dict[str, Any]]], send: Callable[[dict[str, Any]], Awaitable[None]]
) -> None:
    """Answer ASGI lifespan startup and shutdown (nothing to set up or tear down)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
