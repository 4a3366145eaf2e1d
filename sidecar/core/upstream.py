"""The upstream interface, the one plugin kind the pipeline calls: one required method, ``send``.

An adapter owns its connection pool and its provider's wire format. It takes a ``Call`` (the
Anthropic request as a dict, plus the original bytes when unchanged) and a ``Target`` (which model
name to ask for), and returns an ``Answer``: a whole Message, or an ``EventStream``. It raises only
``sidecar.errors`` classes; nothing foreign crosses the adapter.

Cancellation: when the caller's task is cancelled (the client went away, a deadline passed), the
adapter must close its upstream request at once, whether it is connecting, waiting for the first
byte or streaming. For a stream it returned, ``EventStream.aclose`` does the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any

from ..errors import NoRoute
from .answer import Answer
from .call import Call, Target

__all__ = ["ForwardRequest", "Upstream"]


@dataclass(slots=True, kw_only=True)
class ForwardRequest:
    """A request to another Anthropic endpoint (/v1/files, /v1/messages/batches ...), relayed as is."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]
    # The body, or its pieces as they come (sent chunked: a large batch create, spooled on disk;
    # with ``length``, their total, as a content-length body: an upload relayed as it arrives).
    body: bytes | AsyncIterable[bytes]
    request_id: str
    length: int | None = None


class Upstream:
    """Base class for upstream adapters (subclass and implement ``send``)."""

    #: The provider this adapter speaks ("anthropic", "openai", "mock"), for metrics and traces.
    provider: str = ""

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, call: Call, target: Target) -> Answer:
        """Send one Messages or count_tokens call; see the module docstring for the contract."""
        raise NotImplementedError("Upstream.send")

    async def list_models(self, call_headers: dict[str, str]) -> list[dict[str, Any]]:
        """ModelInfo objects this upstream serves (spec section 7); empty when it cannot say."""
        return []

    async def forward(self, request: ForwardRequest) -> Answer:
        """Relay another Anthropic endpoint. Only Anthropic-speaking upstreams can."""
        raise NoRoute(f"upstream {self.name!r} ({self.provider}) does not serve {request.path.split('?')[0]}")

    def connections(self) -> tuple[int, int] | None:
        """(busy, idle) HTTP connections this adapter holds to its upstream, for metrics; None
        when it keeps none (the mock, an in-process handler) or cannot tell."""
        return None

    async def aclose(self) -> None:
        """Release pooled connections."""

    async def __aenter__(self) -> Upstream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
