"""The core both doors call: validate, route, hand the call to an upstream adapter.

It speaks Anthropic JSON (dicts) only; the doors own their wires. One ``Sidecar`` holds one
config snapshot (router + adapters); a reload builds a new one and swaps it atomically, and
in-flight calls keep the snapshot they started with.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from .admission.config import build_admission_config
from .admission.gate import Admission, Ticket
from .admission.headers import rename_upstream_headers
from .config import Config
from .core import Answer, Call, EventStream, StreamEvent
from .core.validate import validate_count_tokens, validate_messages
from .errors import InvalidRequest, NoRoute, NotFound
from .routing import Router
from .routing.policy import (
    RoutePlan,
    add_server_timing,
    check_hops,
    execute,
    forward_hops,
    server_timing_entry,
)
from .translate.estimate import estimate_input_tokens
from .upstreams import ForwardRequest, Target, Upstream
from .upstreams.registry import build_upstream

__all__ = ["Sidecar", "page_models"]

_EPOCH = "1970-01-01T00:00:00Z"


class Sidecar:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.router = Router(config.routes, config.aliases)
        self.admission: Admission | None = None
        if config.admission is not None:
            self.admission = Admission.from_config(build_admission_config(config.admission))
        self.upstreams: dict[str, Upstream] = {
            name: build_upstream(name, cfg) for name, cfg in config.upstreams.items()
        }
        # Routes with a policy get their runtime state (balancers, breakers, budget) here, once
        # per config snapshot.
        self.plans: dict[str, RoutePlan] = {
            route.match: RoutePlan(route.policy, name=route.match)
            for route in config.routes
            if route.policy is not None
        }

    @property
    def uses_mock(self) -> bool:
        return any(self.upstreams[n].provider == "mock" for n in self.router.upstream_names())

    async def messages(self, call: Call) -> Answer:
        """``POST /v1/messages``: a whole Message or an event stream."""
        validate_messages(call.body, call.headers.get("anthropic-version"))
        return await (self._send(call) if self.admission is None else self._admitted(call))

    async def count_tokens(self, call: Call) -> Answer:
        """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``."""
        validate_count_tokens(call.body, call.headers.get("anthropic-version"))
        return await (self._send(call) if self.admission is None else self._admitted(call))

    async def _admitted(self, call: Call) -> Answer:
        """Admission on: the client's key is checked and charged, and never goes upstream."""
        assert self.admission is not None
        model = self.router.aliases.get(call.model, call.model)
        ticket = await self.admission.admit(call.headers, model, estimate_input_tokens(call.body))
        # The client's key is the sidecar's credential, not the upstream's.
        call.headers.pop("x-api-key", None)
        call.headers.pop("authorization", None)
        try:
            answer = await self._send(call)
        except BaseException:
            await ticket.release()
            raise
        # The sidecar's limits for this key; the upstream's own stay visible under upstream-.
        answer.headers[:] = [*rename_upstream_headers(answer.headers), *ticket.headers()]
        if answer.events is not None:
            answer.events = charged_stream(answer.events, ticket)
        else:
            try:
                await ticket.finish(answer.json().get("usage") if call.endpoint == "messages" else None)
            finally:
                await ticket.release()
        return answer

    async def _send(self, call: Call) -> Answer:
        # Sidecar chains: refuse a request that looped, and tell the next hop where it stands.
        hops = check_hops(call.headers, self.config.hops)
        forward_hops(call.headers, hops, self.config.hops)
        route, name = self.router.match(call.model)
        plan = self.plans.get(route.match)
        if plan is None:
            return await self._attempt(call, self.router.route(call.model))
        # Weighted targets, retries (invisible on streams until the first content delta),
        # fallbacks, breakers: sidecar.routing.policy.
        return await execute(call, plan, lambda target: self._attempt(call, target), model=name)

    async def _attempt(self, call: Call, target: Target) -> Answer:
        """One upstream attempt, observed: the CLIENT span (its traceparent goes into
        call.headers), the upstream wait, usage from the answer or its stream."""
        upstream = self.upstreams[target.upstream]
        attempt = call.observer.attempt(call, target, upstream)
        started = time.perf_counter()
        try:
            answer = await upstream.send(call, target)
        except BaseException as exc:
            attempt.failed(exc)
            raise
        finally:
            call.upstream_wait += time.perf_counter() - started
        return attempt.answered(answer)

    def server_timing(self, call: Call, answer: Answer) -> None:
        """Add this hop's time (without the upstream wait) in front of ``server-timing``, so a
        caller sees where time went across a chain of sidecars."""
        hops = self.config.hops
        if not hops.server_timing:
            return
        position = call.headers.get(hops.header, "1")
        overhead = time.perf_counter() - call.started - call.upstream_wait
        hop = int(position) if position.isdigit() else 1
        add_server_timing(answer.headers, server_timing_entry(hop, overhead))

    def breaker_states(self) -> list[tuple[str, str, str]]:
        """(route, upstream, state) for every target of every policy route, for metrics."""
        return [
            (route, target.upstream, target.breaker.state.value)
            for route, plan in self.plans.items()
            for target in plan.targets()
        ]

    async def list_models(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        """Every model this sidecar serves: what its upstreams list, then names the config routes."""
        models: dict[str, dict[str, Any]] = {}
        for name in self.router.upstream_names():
            for info in await self.upstreams[name].list_models(headers):
                mid = info.get("id")
                if isinstance(mid, str) and mid not in models:
                    models[mid] = info
        for mid in self.router.exact_names():
            if mid not in models:
                models[mid] = {"type": "model", "id": mid, "display_name": mid, "created_at": _EPOCH}
        return list(models.values())

    async def get_model(self, model_id: str, headers: dict[str, str]) -> dict[str, Any]:
        models = await self.list_models(headers)
        for info in models:
            if info.get("id") == model_id:
                return info
        # An alias resolves to the model it names, as the API accepts aliases.
        resolved = self.router.aliases.get(model_id)
        for info in models:
            if resolved is not None and info.get("id") == resolved:
                return info
        raise NotFound(f"model: {model_id}")

    async def forward(self, request: ForwardRequest) -> Answer:
        """Another ``/v1/`` endpoint (batches, files, ...): relayed to an Anthropic-speaking upstream.

        The catch-all route's upstream when it speaks Anthropic, else the first one that does;
        where none does, the adapter answers 404 saying so.
        """
        names = self.router.upstream_names()
        try:
            preferred = [self.router.route("*").upstream]
        except NoRoute:
            preferred = []
        candidates = preferred + names
        chosen = next((n for n in candidates if self.upstreams[n].provider == "anthropic"), candidates[0])
        return await self.upstreams[chosen].forward(request)

    async def aclose(self) -> None:
        if self.admission is not None:
            await self.admission.close()
        for upstream in self.upstreams.values():
            await upstream.aclose()


def page_models(
    models: list[dict[str, Any]], limit: int = 20, after_id: str | None = None, before_id: str | None = None
) -> dict[str, Any]:
    """One page of a model list in the API's shape (``data, has_more, first_id, last_id``)."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: Input should be between 1 and 1000")
    ids = [m.get("id") for m in models]
    if after_id is not None:
        if after_id not in ids:
            raise InvalidRequest(f"after_id: unknown model id {after_id!r}")
        start = ids.index(after_id) + 1
        chunk = models[start : start + limit]
        has_more = start + limit < len(models)
    elif before_id is not None:
        if before_id not in ids:
            raise InvalidRequest(f"before_id: unknown model id {before_id!r}")
        end = ids.index(before_id)
        chunk = models[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        chunk = models[:limit]
        has_more = limit < len(models)
    return {
        "data": chunk,
        "has_more": has_more,
        "first_id": chunk[0]["id"] if chunk else None,
        "last_id": chunk[-1]["id"] if chunk else None,
    }


def charged_stream(events: EventStream, ticket: Ticket) -> EventStream:
    """Charge output tokens as they stream (from each ``message_delta``'s cumulative usage),
    reconcile at the end, and free the ticket however the stream ends."""

    async def batches() -> AsyncIterator[list[StreamEvent]]:
        charged = 0
        usage: dict[str, Any] | None = None
        try:
            async for batch in events.batches():
                for event in batch:
                    if event.name == "message_delta" or event.name == "message_start":
                        data = event.data
                        found = (
                            data.get("usage")
                            if event.name == "message_delta"
                            else (data.get("message") or {}).get("usage")
                        )
                        if isinstance(found, dict):
                            usage = {**(usage or {}), **found}
                            out = found.get("output_tokens")
                            if isinstance(out, int) and out > charged:
                                await ticket.charge_output(out - charged)
                                charged = out
                yield batch
            await ticket.finish(usage)
        finally:
            await ticket.release()

    return EventStream(batches(), events.aclose)
