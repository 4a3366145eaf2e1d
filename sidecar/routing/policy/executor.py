"""The resilient executor: one call walked over a route's target groups.

::

    for each group, in order (groups after the first are fallbacks):
        pick a target (weighted; open breakers skipped; targets not yet tried first)
        wait: 0 for a group's first attempt, else retry-after (same upstream) or backoff
        attempt = send_attempt(target), bounded by first_byte; a stream is held (StreamHold)
        ok                        -> return the answer (a held stream is committed)
        status in fallback_on     -> next group at once (if there is one)
        retryable (retry_on, connect error, timeout)
                                  -> again in this group, up to retry.max_attempts
        anything else             -> return that error now
    every attempt after the first takes one retry from the budget; none left -> stop
    nothing answered              -> the last meaningful upstream error

"Meaningful" means the upstream said it (its status, type and ``retry-after``, an in-band
``error``): a connect error or a timeout is only surfaced when nothing better was heard. When
the call was tried more than once, the error carries ``x-should-retry: false`` so the SDK's own
retries do not multiply the load. This module never imports adapters: the pipeline supplies
``send_attempt(target) -> Answer``, which must honour the upstream cancellation contract.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ...config.policy import RoutePolicyConfig
from ...core import Answer, Call, Target
from ...core.clock import Clock, SystemClock, wait_within
from ...errors import Overloaded, SidecarError, Timeout, UpstreamConnectError, UpstreamError
from .backoff import Backoff, parse_retry_after
from .balancer import WeightedBalancer
from .breaker import CircuitBreaker
from .budget import RetryBudget
from .hold import hold

__all__ = [
    "ATTEMPTS_HEADER",
    "UPSTREAM_HEADER",
    "AttemptRecord",
    "PlannedTarget",
    "RoutePlan",
    "RoutedCall",
    "SendAttempt",
    "execute",
    "routing_headers",
]

#: Response headers naming the upstream that answered and how many attempts it took.
UPSTREAM_HEADER = "x-sidecar-upstream"
ATTEMPTS_HEADER = "x-sidecar-attempts"

SendAttempt = Callable[[Target], Awaitable[Answer]]


@dataclass(slots=True)
class AttemptRecord:
    """One upstream attempt, for response headers, logs and metrics."""

    upstream: str
    model: str
    outcome: str  # "ok", "cancelled", or the failure's error type ("overloaded_error", ...)
    duration: float  # seconds from sending to the verdict (a stream's commit or failure)
    status: int = 200  # the failure's HTTP status (200 when ok)
    waited: float = 0.0  # seconds waited (backoff / retry-after) before this attempt
    group: int = 0  # index of the target group


@dataclass(slots=True)
class PlannedTarget:
    """A weighted target of a plan, with its breaker."""

    upstream: str
    model: str | None
    weight: int
    breaker: CircuitBreaker

    def target(self, model: str, route: str, connect_timeout: float | None = None) -> Target:
        return Target(
            upstream=self.upstream, model=self.model or model, route=route, connect_timeout=connect_timeout
        )


class _Group:
    def __init__(self, targets: list[PlannedTarget], balancer: WeightedBalancer) -> None:
        self.targets = targets
        self.balancer = balancer

    def pick(self, tried: set[int], skipped: set[int]) -> int | None:
        """A target whose breaker admits calls, not skipped, an untried one when there is any."""
        usable = [i not in skipped and t.breaker.allows() for i, t in enumerate(self.targets)]
        fresh = [ok and i not in tried for i, ok in enumerate(usable)]
        return self.balancer.pick(fresh if any(fresh) else usable)


class RoutePlan:
    """The runtime state of one route's policy: balancers, breakers and the retry budget.

    Built once per config snapshot and shared by every request of the route. ``seed`` makes
    the balancer and the jitter deterministic (tests); ``clock`` defaults to the system clock.
    """

    def __init__(
        self,
        config: RoutePolicyConfig,
        *,
        name: str = "",
        clock: Clock | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.clock = clock or SystemClock()
        rng = random.Random(seed)
        retry = config.retry
        self.backoff = Backoff(
            retry.base_backoff,
            retry.max_backoff,
            retry.jitter,
            honour_retry_after=retry.honour_retry_after,
            max_retry_after=retry.max_retry_after,
            rng=random.Random(rng.random()),
        )
        self.budget = RetryBudget(config.budget, self.clock)
        self.groups: list[_Group] = []
        for group in config.groups:
            targets = [
                PlannedTarget(
                    t.upstream,
                    t.model,
                    t.weight,
                    CircuitBreaker(config.breaker, self.clock, f"{t.upstream}/{t.model or '*'}"),
                )
                for t in group.targets
            ]
            balancer = WeightedBalancer(
                [t.weight for t in targets], mode=config.balance, rng=random.Random(rng.random())
            )
            self.groups.append(_Group(targets, balancer))

    def targets(self) -> list[PlannedTarget]:
        """Every target of every group, in order (for metrics of breaker states)."""
        return [t for g in self.groups for t in g.targets]


class RoutedCall:
    """One call's walk over a plan. ``attempts`` lists every attempt, whatever the outcome."""

    def __init__(
        self, call: Call, plan: RoutePlan, send_attempt: SendAttempt, *, model: str | None = None
    ) -> None:
        self.call = call
        self.plan = plan
        self.send_attempt = send_attempt
        self.model = model or call.model
        self.attempts: list[AttemptRecord] = []
        self._last: SidecarError | None = None
        self._meaningful: SidecarError | None = None

    async def run(self) -> Answer:
        """The first answer that worked, or raise the error the client should see."""
        plan, cfg, clock = self.plan, self.plan.config, self.plan.clock
        deadline = self.call.deadline
        plan.budget.record_request()
        retries = 0
        stop = False
        for gi, group in enumerate(plan.groups):
            tried: set[int] = set()
            skipped: set[int] = set()
            previous: tuple[PlannedTarget, SidecarError] | None = None
            in_group = 0
            while in_group < cfg.retry.max_attempts and not stop:
                index = group.pick(tried, skipped)
                if index is None:
                    break
                planned = group.targets[index]
                wait = 0.0
                if self.attempts:
                    if not plan.budget.try_retry(retries):
                        stop = True
                        break
                    retries += 1
                    if previous is not None:
                        wait = self._wait(in_group - 1, previous, planned)
                if deadline is not None and clock.monotonic() + wait >= deadline:
                    stop = True
                    break
                if wait > 0:
                    await clock.sleep(wait)
                if not planned.breaker.acquire():
                    skipped.add(index)
                    continue
                tried.add(index)
                in_group += 1
                outcome = await self._attempt(gi, planned, wait)
                if isinstance(outcome, Answer):
                    return self._answered(outcome, planned)
                verdict = self._verdict(outcome, has_fallback=gi + 1 < len(plan.groups))
                if verdict == "fatal":
                    raise self._final(outcome)
                if deadline is not None and clock.monotonic() >= deadline:
                    stop = True
                    break
                if verdict == "fallback":
                    break
                previous = (planned, outcome)
                asked = (
                    parse_retry_after(outcome.headers, clock.time()) if cfg.retry.honour_retry_after else None
                )
                if asked is not None and asked > cfg.retry.max_retry_after:
                    skipped.add(index)  # it asked for longer than we hold a client
            if stop:
                break
        raise self._final(self._give_up())

    def _wait(
        self, retries: int, previous: tuple[PlannedTarget, SidecarError], planned: PlannedTarget
    ) -> float:
        target, error = previous
        headers = error.headers if target.upstream == planned.upstream else []
        wait = self.plan.backoff.wait(retries, headers, self.plan.clock.time())
        return self.plan.backoff.delay(retries) if wait is None else wait

    async def _attempt(self, gi: int, planned: PlannedTarget, waited: float) -> Answer | SidecarError:
        """One attempt, its breaker and record updated; an Answer (stream committed) or the error."""
        plan, cfg, clock, call = self.plan, self.plan.config, self.plan.clock, self.call
        target = planned.target(self.model, plan.name, cfg.timeouts.connect)
        started = clock.monotonic()
        ends = _earliest(started + cfg.timeouts.total if cfg.timeouts.total else None, call.deadline)
        first_byte = _earliest(started + cfg.timeouts.first_byte if cfg.timeouts.first_byte else None, ends)
        record = AttemptRecord(target.upstream, target.model, "cancelled", 0.0, 0, waited, gi)
        self.attempts.append(record)
        task = asyncio.ensure_future(self.send_attempt(target))
        verdict: Answer | SidecarError
        try:
            limit = 0.0 if first_byte is None else first_byte - started
            if not await wait_within(
                clock, task, None if first_byte is None else first_byte - clock.monotonic()
            ):
                await _cancel(task)
                verdict = Timeout(f"upstream {target.upstream!r} sent no answer within {limit:g} s")
            else:
                try:
                    verdict = task.result()
                except SidecarError as exc:
                    verdict = exc
            events = verdict.events if isinstance(verdict, Answer) else None
            if events is not None:
                held = await hold(
                    events,
                    cfg.hold_limit,
                    clock,
                    idle=cfg.timeouts.idle,
                    deadline=ends,
                    request_id=call.request_id,
                    upstream=target.upstream,
                    on_end=self._on_stream_end(planned),
                )
                if held.error is not None:
                    verdict = held.error
                elif isinstance(verdict, Answer):
                    verdict.events = held.stream
        except BaseException as exc:
            record.duration = clock.monotonic() - started
            record.outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
            planned.breaker.release()
            # Also when the attempt is already done: its exception must be retrieved, and an
            # answer it produced (a stream) closed, or the upstream request stays open.
            await _cancel(task)
            raise
        record.duration = clock.monotonic() - started
        if isinstance(verdict, Answer):
            record.outcome, record.status = "ok", 200
            planned.breaker.record_success()
            return verdict
        record.outcome, record.status = verdict.error_type, verdict.status
        if self._is_fault(verdict):
            planned.breaker.record_failure()
        else:
            planned.breaker.record_success()
        self._last = verdict
        if not isinstance(verdict, (UpstreamError, Timeout)):
            self._meaningful = verdict
        return verdict

    def _on_stream_end(self, planned: PlannedTarget) -> Callable[[SidecarError | None], None]:
        def on_end(failure: SidecarError | None) -> None:
            # After the commit the breaker already counted a success; a later fault still counts.
            if failure is not None and self._is_fault(failure):
                planned.breaker.record_failure()

        return on_end

    def _answered(self, answer: Answer, planned: PlannedTarget) -> Answer:
        if not answer.upstream:
            answer.upstream = planned.upstream
        answer.headers.extend(routing_headers(self.attempts))
        return answer

    def _verdict(self, error: SidecarError, *, has_fallback: bool) -> str:
        """What a failed attempt calls for: "fallback", "retry" or "fatal". In the last group a
        ``fallback_on`` status has nowhere to go, so it is retried there when retryable."""
        retry = self.plan.config.retry
        if has_fallback and error.status in self.plan.config.fallback_on:
            return "fallback"
        should = _header(error.headers, "x-should-retry")
        if should == "false":
            return "fatal"
        if isinstance(error, (UpstreamConnectError, Timeout)) and not retry.retry_connect_errors:
            return "fatal"
        if (
            should == "true"
            or error.status in retry.retry_on
            or isinstance(error, (UpstreamConnectError, Timeout))
        ):
            return "retry"
        return "fatal"

    def _is_fault(self, error: SidecarError) -> bool:
        """Does this failure count against the target's health?"""
        if isinstance(error, (UpstreamError, Timeout)) or error.status >= 500:
            return True
        return error.status == 429 and self.plan.config.breaker.count_rate_limits

    def _give_up(self) -> SidecarError:
        if self._meaningful is not None:
            return self._meaningful
        if self._last is not None:
            return self._last
        # Nothing was tried: every breaker is open (or the deadline had passed already).
        if self.call.deadline is not None and self.plan.clock.monotonic() >= self.call.deadline:
            return Timeout("the request's deadline passed before an upstream could be tried")
        wait = min((t.breaker.retry_after() for t in self.plan.targets()), default=0.0)
        return Overloaded(
            f"no healthy upstream for model {self.model!r} (every target's circuit breaker is open)",
            headers=[("retry-after", str(max(math.ceil(wait), 1)))],
        )

    def _final(self, error: SidecarError) -> SidecarError:
        headers = [h for h in error.headers if h[0] not in (UPSTREAM_HEADER, ATTEMPTS_HEADER)]
        if len(self.attempts) > 1:
            headers = [h for h in headers if h[0] != "x-should-retry"] + [("x-should-retry", "false")]
        headers.extend(routing_headers(self.attempts))
        error.headers = headers
        return error


async def execute(
    call: Call,
    plan: RoutePlan,
    send_attempt: SendAttempt,
    *,
    model: str | None = None,
    attempts: list[AttemptRecord] | None = None,
) -> Answer:
    """Run ``call`` over ``plan``; ``attempts`` (when given) is filled in, even on failure.

    ``model`` is the requested model after aliases (default ``call.model``); a target without a
    rename asks its upstream for it. ``call.deadline`` must be on ``plan.clock.monotonic()``.
    Raises the SidecarError the client should see; cancelling the caller cancels the attempt in
    flight and closes any stream it returned.
    """
    routed = RoutedCall(call, plan, send_attempt, model=model)
    try:
        return await routed.run()
    finally:
        if attempts is not None:
            attempts.extend(routed.attempts)


def routing_headers(attempts: list[AttemptRecord]) -> list[tuple[str, str]]:
    """``x-sidecar-upstream`` (the upstream that answered, if one did) and ``x-sidecar-attempts``."""
    out: list[tuple[str, str]] = []
    if attempts and attempts[-1].outcome == "ok":
        out.append((UPSTREAM_HEADER, attempts[-1].upstream))
    out.append((ATTEMPTS_HEADER, str(len(attempts))))
    return out


def _earliest(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.strip().lower()
    return None


async def _cancel(task: asyncio.Future[Answer]) -> None:
    """Cancel an attempt; if it had already produced an answer, close that answer."""
    task.cancel()
    results = await asyncio.gather(task, return_exceptions=True)
    answer = results[0]
    if isinstance(answer, Answer):
        if answer.events is not None:
            await answer.events.aclose()
        elif answer.close is not None:
            await answer.close()
