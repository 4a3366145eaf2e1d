"""The core both doors call: validate, route, hand the call to an upstream adapter.

It speaks Anthropic JSON (dicts) only; the doors own their wires. One ``Pipeline`` holds one
config snapshot (router + adapters); a reload builds a new one and swaps it atomically, and
in-flight calls keep the snapshot they started with.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from .admission.gate import Admission, Ticket
from .admission.headers import rename_upstream_headers
from .admission.keys import KeyRecord
from .admission.pacing import Pacers, UpstreamBudget, budget_identity
from .config import Config
from .config.model import PacingConfig, UpstreamConfig
from .core import Answer, Call, EventStream, ForwardRequest, StreamEvent, Target, Upstream
from .core.credentials import CREDENTIAL_HEADERS
from .core.estimate import TextCounter
from .core.validate import validate_count_tokens, validate_messages
from .errors import InvalidRequest, NotFound, PermissionDenied, SidecarError
from .hops import add_server_timing, check_hops, forward_hops, server_timing_entry
from .routing import Resolved, Router
from .routing.policy import RoutePlan, execute
from .upstreams.registry import build_upstream

__all__ = ["Pipeline", "page_models"]

_EPOCH = "1970-01-01T00:00:00Z"
_ONE_REQUEST = {"requests": 1}  # an attempt's cost while its upstream budget is unknown


class _Pace:
    """Upstream pacing of one upstream: its settings and, with a configured key, its budget's
    identity (else each request's own forwarded credential names it)."""

    __slots__ = ("base", "config", "identity")

    def __init__(self, provider: str, name: str, cfg: UpstreamConfig, pacing: PacingConfig) -> None:
        self.config = pacing
        self.base = (provider, getattr(cfg, "base_url", name))
        key = getattr(cfg, "api_key", None)
        self.identity = budget_identity(*self.base, key) if key else None

    def identity_for(self, headers: dict[str, str]) -> str:
        if self.identity is not None:
            return self.identity
        credential = next((headers[h] for h in CREDENTIAL_HEADERS if headers.get(h)), "")
        return budget_identity(*self.base, credential)


class Pipeline:
    def __init__(self, config: Config, previous: Pipeline | None = None) -> None:
        """One config snapshot. ``previous`` is the snapshot a reload replaces: the upstream
        budgets, admission counters and (unless its backend changed) the limiter carry over."""
        self.config = config
        self.router = Router(config.routes, config.aliases)
        self.pacers: Pacers = previous.pacers if previous is not None else Pacers()
        self.forwards_client_key = {r.match for r in config.routes if r.forward_client_key}
        self.upstreams: dict[str, Upstream] = {
            name: build_upstream(name, cfg) for name, cfg in config.upstreams.items()
        }
        self._pace: dict[str, _Pace] = {}
        for name, cfg in config.upstreams.items():
            pacing = getattr(cfg, "pacing", None)  # the mock has none
            if isinstance(pacing, PacingConfig) and pacing.enabled:
                self._pace[name] = _Pace(self.upstreams[name].provider, name, cfg, pacing)
        # Routes with a policy get their runtime state (balancers, breakers, budget) here, once
        # per config snapshot.
        self.plans: dict[str, RoutePlan] = {
            route.match: RoutePlan(route.policy, name=route.match)
            for route in config.routes
            if route.policy is not None
        }
        # Last: a reload hands the limiter over only once nothing else here can fail.
        self.admission: Admission | None = None
        if config.admission is not None:
            self.admission = Admission.from_config(
                config.admission,
                previous=previous.admission if previous is not None else None,
            )

    @property
    def uses_mock(self) -> bool:
        return any(self.upstreams[n].provider == "mock" for n in self.router.upstream_names())

    async def messages(self, call: Call) -> Answer:
        """``POST /v1/messages``: a whole Message or an event stream."""
        validate_messages(call.body, call.headers.get("anthropic-version"))
        return await self._serve(call)

    async def count_tokens(self, call: Call) -> Answer:
        """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``."""
        validate_count_tokens(call.body, call.headers.get("anthropic-version"))
        return await self._serve(call)

    async def _serve(self, call: Call) -> Answer:
        # Sidecar chains: refuse a request that looped before it spends anything of its key,
        # and tell the next hop where it stands.
        hops = check_hops(call.headers, self.config.hops)
        forward_hops(call.headers, hops, self.config.hops)
        resolved = self.router.resolve(call.model)
        if self.admission is None:
            return await self._send(call, resolved)
        return await self._admitted(call, resolved)

    async def _admitted(self, call: Call, resolved: Resolved) -> Answer:
        """Admission on: the client's key is checked and charged, and never goes upstream."""
        assert self.admission is not None
        ticket = await self.admission.admit(call.headers, resolved.name, call.estimate())
        # The client's key is the sidecar's credential, not the upstream's, unless its route
        # says to forward it (a peer sidecar checking the same keys).
        if resolved.route is None or resolved.route.match not in self.forwards_client_key:
            for name in CREDENTIAL_HEADERS:
                call.headers.pop(name, None)
        try:
            answer = await self._send(call, resolved)
        except BaseException as exc:
            await ticket.release()
            if isinstance(exc, SidecarError):
                exc.headers = [*rename_upstream_headers(exc.headers), *ticket.headers()]
            raise
        # The sidecar's limits for this key; the upstream's own stay visible under upstream-.
        answer.headers[:] = [*rename_upstream_headers(answer.headers), *ticket.headers()]
        if answer.events is not None:
            answer.events = charged_stream(answer.events, ticket, call.body.get("max_tokens"))
        else:
            try:
                await ticket.finish(answer.json().get("usage") if call.endpoint == "messages" else None)
            finally:
                await ticket.release()
        return answer

    def _authenticated(self, headers: dict[str, str], *, any_model: bool) -> KeyRecord | None:
        """Admission on, outside the limits (model lists, forwarded endpoints): check the key and
        drop it from what goes upstream. ``any_model``: a key limited to some models is refused
        (403), as batches and files could reach any model. Returns the key's record (None when
        admission is off or in shadow mode)."""
        if self.admission is None:
            return None
        record = self.admission.authenticate(headers)
        for name in CREDENTIAL_HEADERS:
            headers.pop(name, None)
        if any_model and record is not None and record.models != ("*",) and not self.admission.shadow:
            self.admission.stats.count("permission", shadow=False, key=record.name)
            raise PermissionDenied(
                "this API key may use only some models; batches, files and other endpoints that "
                "can reach any model are not open to it"
            )
        return record

    async def _send(self, call: Call, resolved: Resolved) -> Answer:
        route, target = resolved.require()
        plan = self.plans.get(route.match)
        if plan is None:
            return await self._attempt(call, target)
        # Weighted targets, retries (invisible on streams until the first content delta),
        # fallbacks, breakers: sidecar.routing.policy.
        return await execute(call, plan, lambda target: self._attempt(call, target), model=resolved.name)

    async def _attempt(self, call: Call, target: Target) -> Answer:
        """One upstream attempt, observed: the CLIENT span (its traceparent goes into
        call.headers), the upstream wait, usage from the answer or its stream."""
        upstream = self.upstreams[target.upstream]
        pace = self._pace.get(target.upstream) if call.endpoint == "messages" else None
        budget: UpstreamBudget | None = None
        seq = 0
        if pace is not None:
            budget = self.pacers.budget(pace.identity_for(call.headers))
            if budget.buckets or budget.blocked_until:
                seq = await self._pace_attempt(call, target.upstream, pace, budget)
            else:
                seq = budget.sent(_ONE_REQUEST)
        attempt = call.observer.attempt(call, target, upstream)
        started = time.perf_counter()
        try:
            answer = await upstream.send(call, target)
        except BaseException as exc:
            if budget is not None:
                if isinstance(exc, SidecarError) and exc.headers:
                    budget.observe(exc.headers, exc.status, seq)
                else:
                    budget.done(seq)
            attempt.failed(exc)
            raise
        finally:
            call.upstream_wait += time.perf_counter() - started
        if budget is not None:
            budget.observe(answer.headers, answer.status, seq)
        return attempt.answered(answer)

    async def _pace_attempt(self, call: Call, upstream: str, pace: _Pace, budget: UpstreamBudget) -> int:
        """Hold the attempt until the upstream's budget has room (``sidecar.admission.pacing``);
        the time held counts as upstream wait (the upstream's limits caused it). Returns the
        attempt's ``seq`` in the budget."""
        costs = {"requests": 1}
        if "tokens" in budget.buckets or "input_tokens" in budget.buckets:
            estimate = call.estimate()
            costs["tokens"] = costs["input_tokens"] = estimate
        max_wait = pace.config.max_wait
        left = call.remaining()
        if left is not None:
            max_wait = min(max_wait, max(left, 0.0))
        held = await self.pacers.take(
            budget, costs, upstream=upstream, reserve=pace.config.reserve, max_wait=max_wait
        )
        call.upstream_wait += held.waited
        return held.seq

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
        """Every model this sidecar serves: what its upstreams list, then names the config routes.
        With client keys: the models the caller's key may use."""
        headers = dict(headers)
        record = self._authenticated(headers, any_model=False)
        models: dict[str, dict[str, Any]] = {}
        for name in self.router.upstream_names():
            for info in await self.upstreams[name].list_models(headers):
                mid = info.get("id")
                if isinstance(mid, str) and mid not in models:
                    models[mid] = info
        for mid in self.router.exact_names():
            if mid not in models:
                models[mid] = {"type": "model", "id": mid, "display_name": mid, "created_at": _EPOCH}
        if record is not None:
            return [info for mid, info in models.items() if record.allows(mid)]
        return list(models.values())

    async def get_model(self, model_id: str, headers: dict[str, str]) -> dict[str, Any]:
        models = await self.list_models(headers)
        for info in models:
            if info.get("id") == model_id:
                return info
        # An alias resolves to the model it names, as the API accepts aliases.
        resolved = self.router.resolve(model_id).name
        for info in models:
            if resolved != model_id and info.get("id") == resolved:
                return info
        raise NotFound(f"model: {model_id}")

    async def forward(self, request: ForwardRequest) -> Answer:
        """Another ``/v1/`` endpoint (batches, files, ...): relayed to an Anthropic-speaking upstream.

        The catch-all route's upstream when it speaks Anthropic, else the first one that does;
        where none does, the adapter answers 404 saying so. With client keys, only keys that may
        use every model reach these endpoints, and their key is not forwarded.
        """
        self._authenticated(request.headers, any_model=True)
        names = self.router.upstream_names()
        catch_all = self.router.resolve("*").target
        preferred = [catch_all.upstream] if catch_all is not None else []
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


def charged_stream(events: EventStream, ticket: Ticket, max_tokens: Any = None) -> EventStream:
    """Charge output tokens as they stream, reconcile at the end, and free the ticket however the
    stream ends.

    The API reports output usage only in ``message_start`` (1) and the last ``message_delta``,
    so while a key's output is limited the deltas' text (text, thinking, tool input JSON) is
    counted with the local estimator and charged as it passes (at most ``max_tokens``); the
    upstream's count replaces the estimate when it comes. A client that leaves early is charged
    what it was sent.
    """
    counting = ticket.counts_output
    cap = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None

    async def batches() -> AsyncIterator[list[StreamEvent]]:
        charged = 0  # output tokens charged so far
        reported = 0  # the upstream's latest output count
        counter = TextCounter()
        usage: dict[str, Any] | None = None
        try:
            async for batch in events.batches():
                for event in batch:
                    name = event.name
                    if counting and name == "content_block_delta":
                        delta = event.data.get("delta")
                        if isinstance(delta, dict):
                            text = delta.get("text") or delta.get("thinking") or delta.get("partial_json")
                            if isinstance(text, str):
                                counter.add(text)
                    elif name == "message_delta" or name == "message_start":
                        data = event.data
                        found = (
                            data.get("usage")
                            if name == "message_delta"
                            else (data.get("message") or {}).get("usage")
                        )
                        if isinstance(found, dict):
                            usage = {**(usage or {}), **found}
                            out = found.get("output_tokens")
                            if isinstance(out, int) and out > reported:
                                reported = out
                if counting:
                    # The estimate, or the upstream's count once it says more; ``finish``
                    # reconciles either to the final usage.
                    used = max(reported, counter.tokens())
                    if cap is not None:
                        used = min(used, max(cap, reported))
                    if used > charged:
                        await ticket.charge_output(used - charged)
                        charged = used
                elif reported > charged:
                    await ticket.charge_output(reported - charged)
                    charged = reported
                yield batch
            await ticket.finish(usage)
        finally:
            await ticket.release()

    return EventStream(batches(), events.aclose)
