"""An upstream that calls a Python function: the in-process seam (httpx's ``MockTransport`` idea).

``Pipeline(config, adapters={"name": HandlerUpstream("name", handler)})`` (or the same on
``Runtime``) puts it in place of the adapter the config names, so a test builds the real
pipeline, filters, doors and telemetry in process and decides what the upstream answers. The
config's entry for that name still supplies what wraps the adapter (its pacing settings).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..core import Answer, Call, ForwardRequest, Target, Upstream

__all__ = ["Handler", "HandlerUpstream"]

#: What the handler is given and returns: exactly ``Upstream.send``'s contract (raise
#: ``sidecar.errors`` classes for upstream errors; a returned stream is an ``EventStream``).
Handler = Callable[[Call, Target], Awaitable[Answer]]


class HandlerUpstream(Upstream):
    """Answers every call with ``handler(call, target)``; ``models`` are what ``list_models`` lists."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        *,
        provider: str = "anthropic",
        models: Sequence[dict[str, Any]] = (),
        forward: Callable[[ForwardRequest], Awaitable[Answer]] | None = None,
    ) -> None:
        super().__init__(name)
        self.provider = provider
        self._handler = handler
        self._models = list(models)
        self._forward = forward

    async def send(self, call: Call, target: Target) -> Answer:
        return await self._handler(call, target)

    async def list_models(self, call_headers: dict[str, str]) -> list[dict[str, Any]]:
        return list(self._models)

    async def forward(self, request: ForwardRequest) -> Answer:
        if self._forward is None:
            return await super().forward(request)
        return await self._forward(request)
