"""Upstream filters: the cross-cutting work of one upstream attempt, as thin wrappers around
``Upstream.send`` (the Envoy filter idea), composed per upstream in ``compose``.

Each filter has the adapter's own signature, ``send(call, target) -> Answer``, and wraps the
next one. Outermost first, an attempt passes:

1. ``DropClientKey`` (admission on): the client's key authenticated it to this sidecar; it is
   not the upstream's credential, unless the route forwards it to a peer sidecar
   (``forward_client_key``).
2. ``Paced`` (upstream pacing on): holds the attempt until the upstream's budget, learnt from
   its ratelimit headers, has room; feeds the answer's headers back into that budget. The hold
   counts as upstream wait.
3. ``Observed``: the attempt's telemetry (``call.observer.attempt``: the CLIENT span, whose
   traceparent goes into ``call.headers``, and the usage of the answer or its stream), and the
   time spent waiting for the upstream (``call.upstream_wait``).
4. The adapter.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from ..admission.pacing import Pacers, Reservation, UpstreamBudget, budget_identity
from ..config.model import PacingConfig, UpstreamConfig
from ..core import Answer, Call, Target, Upstream
from ..core.credentials import CREDENTIAL_HEADERS
from ..errors import SidecarError

__all__ = ["DropClientKey", "Observed", "Paced", "Send", "compose"]

#: One upstream attempt: the adapter's ``send``, or a filter around it.
Send = Callable[[Call, Target], Awaitable[Answer]]

_ONE_REQUEST = {"requests": 1}  # an attempt's cost while its upstream budget is unknown


class Observed:
    """The attempt's telemetry and the upstream wait."""

    __slots__ = ("_next", "_upstream")

    def __init__(self, upstream: Upstream, send: Send) -> None:
        self._upstream = upstream
        self._next = send

    async def __call__(self, call: Call, target: Target) -> Answer:
        attempt = call.observer.attempt(call, target, self._upstream)
        started = time.perf_counter()
        try:
            answer = await self._next(call, target)
        except BaseException as exc:
            attempt.failed(exc)
            raise
        finally:
            call.upstream_wait += time.perf_counter() - started
        return attempt.answered(answer)


class Paced:
    """Upstream pacing of one upstream (``sidecar.admission.pacing``): its settings and, with a
    configured key, its budget's identity (else each request's own forwarded credential names
    it). Only Messages calls are paced."""

    __slots__ = ("_base", "_config", "_identity", "_name", "_next", "_pacers")

    def __init__(
        self, upstream: Upstream, cfg: UpstreamConfig, pacing: PacingConfig, pacers: Pacers, send: Send
    ) -> None:
        self._name = upstream.name
        self._config = pacing
        self._pacers = pacers
        self._base = (upstream.provider, getattr(cfg, "base_url", upstream.name))
        key = getattr(cfg, "api_key", None)
        self._identity = budget_identity(*self._base, key) if key else None
        self._next = send

    def _identity_for(self, headers: dict[str, str]) -> str:
        if self._identity is not None:
            return self._identity
        credential = next((headers[h] for h in CREDENTIAL_HEADERS if headers.get(h)), "")
        return budget_identity(*self._base, credential)

    async def __call__(self, call: Call, target: Target) -> Answer:
        if call.endpoint != "messages":
            return await self._next(call, target)
        budget = self._pacers.budget(self._identity_for(call.headers))
        if budget.buckets or budget.blocked_until:
            costs = self._costs(call, budget)
            now = self._pacers.take_now(budget, costs, self._config.reserve)
            seq = now.seq if isinstance(now, Reservation) else await self._hold(call, budget, costs, now)
        else:
            seq = budget.sent(_ONE_REQUEST)
        try:
            answer = await self._next(call, target)
        except BaseException as exc:
            if isinstance(exc, SidecarError) and exc.headers:
                budget.observe(exc.headers, exc.status, seq)
            else:
                budget.done(seq)
            raise
        budget.observe(answer.headers, answer.status, seq)
        return answer

    @staticmethod
    def _costs(call: Call, budget: UpstreamBudget) -> dict[str, int]:
        costs = {"requests": 1}
        if "tokens" in budget.buckets or "input_tokens" in budget.buckets:
            estimate = call.estimate()
            costs["tokens"] = costs["input_tokens"] = estimate
        return costs

    async def _hold(self, call: Call, budget: UpstreamBudget, costs: dict[str, int], wait: float) -> int:
        """Hold the attempt the ``wait`` seconds until the budget has room; the time held counts
        as upstream wait (the upstream's limits caused it). Returns the attempt's ``seq``."""
        max_wait = self._config.max_wait
        left = call.remaining()
        if left is not None:
            max_wait = min(max_wait, max(left, 0.0))
        held = await self._pacers.hold(budget, costs, wait, upstream=self._name, max_wait=max_wait)
        call.upstream_wait += held.waited
        return held.seq


class DropClientKey:
    """Admission on: the client's key never goes upstream, except on the routes that forward it."""

    __slots__ = ("_forwarding_routes", "_next")

    def __init__(self, forwarding_routes: frozenset[str], send: Send) -> None:
        self._forwarding_routes = forwarding_routes
        self._next = send

    async def __call__(self, call: Call, target: Target) -> Answer:
        if target.route not in self._forwarding_routes:
            for name in CREDENTIAL_HEADERS:
                call.headers.pop(name, None)
        return await self._next(call, target)


def compose(
    upstream: Upstream,
    cfg: UpstreamConfig,
    pacers: Pacers,
    *,
    admission: bool,
    forwarding_routes: frozenset[str],
) -> Send:
    """The filter chain for one upstream, in the order the module docstring gives."""
    send: Send = Observed(upstream, upstream.send)
    pacing = getattr(cfg, "pacing", None)  # the mock has none
    if isinstance(pacing, PacingConfig) and pacing.enabled:
        send = Paced(upstream, cfg, pacing, pacers, send)
    if admission:
        send = DropClientKey(forwarding_routes, send)
    return send
