"""The executor over scripted upstreams: attempt counts, target order, waits, streams, errors."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from typing import Any

import msgspec
import pytest

from sidecar.config.policy import RoutePolicyConfig
from sidecar.core import Answer
from sidecar.core.clock import FakeClock
from sidecar.errors import Overloaded, SidecarError, Timeout, UpstreamConnectError
from sidecar.routing.policy import AttemptRecord, BreakerState, RoutePlan, execute

from .policy_fakes import (
    HANG,
    FakeUpstreams,
    Reply,
    block_start,
    delta,
    drain,
    error_event,
    full_stream,
    message_start,
    ping,
    texts,
    upstream_error,
)


def plan_for(groups: list[list[Any]], clock: FakeClock, seed: int = 1, **policy: Any) -> RoutePlan:
    """``groups``: lists of upstream names, or (name, weight) pairs."""
    data: dict[str, Any] = {
        "groups": [
            {
                "targets": [
                    {"upstream": t} if isinstance(t, str) else {"upstream": t[0], "weight": t[1]} for t in g
                ]
            }
            for g in groups
        ],
        **policy,
    }
    data.setdefault("retry", {})
    data["retry"] = {"jitter": 0.0, **data["retry"]}
    return RoutePlan(msgspec.convert(data, RoutePolicyConfig), name="claude-*", clock=clock, seed=seed)


def outcomes(attempts: list[AttemptRecord]) -> list[tuple[str, str, float]]:
    return [(a.upstream, a.outcome, a.waited) for a in attempts]


async def run(
    plan: RoutePlan, upstreams: FakeUpstreams, *, stream: bool = False, deadline: float | None = None
) -> tuple[Answer, list[AttemptRecord]]:
    from .policy_fakes import make_call

    attempts: list[AttemptRecord] = []
    answer = await execute(
        make_call(stream=stream, deadline=deadline), plan, upstreams.send, attempts=attempts
    )
    return answer, attempts


async def fail(
    plan: RoutePlan, upstreams: FakeUpstreams, *, stream: bool = False
) -> tuple[SidecarError, list[AttemptRecord]]:
    attempts: list[AttemptRecord] = []
    from .policy_fakes import make_call

    with pytest.raises(SidecarError) as info:
        await execute(make_call(stream=stream), plan, upstreams.send, attempts=attempts)
    return info.value, attempts


async def test_429_with_retry_after_waits_what_was_asked() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(error=upstream_error(429, [("retry-after-ms", "1500")]))]})
    answer, attempts = await run(plan_for([["a"]], clock), ups)
    assert ups.order() == ["a", "a"]
    assert outcomes(attempts) == [("a", "rate_limit_error", 0.0), ("a", "ok", 1.5)]
    assert clock.monotonic() == 1.5
    assert ("x-sidecar-upstream", "a") in answer.headers and ("x-sidecar-attempts", "2") in answer.headers


async def test_429_with_retry_after_date() -> None:
    clock = FakeClock(start=0.0)  # wall clock 1_700_000_000 = Tue, 14 Nov 2023 22:13:20 GMT
    err = upstream_error(429, [("retry-after", "Tue, 14 Nov 2023 22:13:24 GMT")])
    ups = FakeUpstreams(clock, {"a": [Reply(error=err)]})
    _, attempts = await run(plan_for([["a"]], clock), ups)
    assert outcomes(attempts) == [("a", "rate_limit_error", 0.0), ("a", "ok", 4.0)]


async def test_500_backs_off_and_prefers_an_untried_target() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(error=upstream_error(500))]})
    _, attempts = await run(plan_for([["a", "b"]], clock, retry={"base_backoff": 0.5}), ups)
    assert outcomes(attempts) == [("a", "api_error", 0.0), ("b", "ok", 0.5)]


async def test_jittered_backoff_is_seeded() -> None:
    waits = []
    for _ in range(2):
        clock = FakeClock(start=0.0)
        ups = FakeUpstreams(
            clock, {"a": [Reply(error=upstream_error(503)), Reply(error=upstream_error(503))]}
        )
        plan = plan_for([["a"]], clock, seed=9, retry={"jitter": 0.25, "max_attempts": 3})
        _, attempts = await run(plan, ups)
        waits.append([a.waited for a in attempts])
    assert waits[0] == waits[1]
    assert 0.375 <= waits[0][1] <= 0.5 and 0.75 <= waits[0][2] <= 1.0


async def test_529_takes_the_fallback_group_at_once() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(error=upstream_error(529))]})
    answer, attempts = await run(plan_for([["a"], ["b"]], clock), ups)
    assert ups.order() == ["a", "b"] and answer.upstream == "b"
    assert outcomes(attempts) == [("a", "overloaded_error", 0.0), ("b", "ok", 0.0)]
    assert [a.group for a in attempts] == [0, 1]


async def test_connect_error_retries_on_the_next_target() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(error=UpstreamConnectError("upstream 'a' unreachable"))]})
    _, attempts = await run(plan_for([["a", "b"]], clock), ups)
    assert outcomes(attempts) == [("a", "api_error", 0.0), ("b", "ok", 0.5)]
    assert attempts[0].status == 502


async def test_all_fail_surfaces_the_last_upstream_error_with_retry_after() -> None:
    clock = FakeClock(start=0.0)
    limited = [Reply(error=upstream_error(429, [("retry-after", "2")])) for _ in range(2)]
    ups = FakeUpstreams(clock, {"a": limited, "b": [Reply(error=UpstreamConnectError("unreachable"))]})
    err, attempts = await fail(plan_for([["a"], ["b"]], clock), ups)
    assert ups.order() == ["a", "a", "b"]
    assert outcomes(attempts) == [
        ("a", "rate_limit_error", 0.0),
        ("a", "rate_limit_error", 2.0),
        ("b", "api_error", 0.0),
    ]
    assert (err.status, err.error_type, err.request_id) == (429, "rate_limit_error", "req_up_429")
    assert ("retry-after", "2") in err.headers
    assert ("x-should-retry", "false") in err.headers and ("x-sidecar-attempts", "3") in err.headers


async def test_connect_errors_only_surface_when_nothing_better_was_heard() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {n: [Reply(error=UpstreamConnectError(f"{n} unreachable"))] * 2 for n in "ab"})
    err, _ = await fail(plan_for([["a"], ["b"]], clock), ups)
    assert isinstance(err, UpstreamConnectError) and err.message == "b unreachable"


async def test_a_non_retryable_error_returns_at_once() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(error=upstream_error(400))]})
    err, attempts = await fail(plan_for([["a", "b"], ["c"]], clock), ups)
    assert err.status == 400 and len(attempts) == 1
    assert not any(k == "x-should-retry" for k, _ in err.headers)


async def test_upstream_says_do_not_retry() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(error=upstream_error(500, [("x-should-retry", "false")]))]})
    err, attempts = await fail(plan_for([["a", "b"]], clock), ups)
    assert err.status == 500 and len(attempts) == 1


async def test_retry_after_beyond_the_cap_skips_that_target() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(error=upstream_error(429, [("retry-after", "120")]))]})
    _, attempts = await run(plan_for([["a"], ["b"]], clock), ups)
    assert outcomes(attempts) == [("a", "rate_limit_error", 0.0), ("b", "ok", 0.0)]
    # With nowhere else to go, the client gets the 429 and its retry-after.
    ups = FakeUpstreams(clock, {"a": [Reply(error=upstream_error(429, [("retry-after", "120")]))]})
    err, attempts = await fail(plan_for([["a"]], clock), ups)
    assert len(attempts) == 1 and ("retry-after", "120") in err.headers


async def test_budget_caps_retries_per_request() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(
        clock, {"a": [Reply(error=upstream_error(503))] * 5, "b": [Reply(error=upstream_error(503))]}
    )
    plan = plan_for([["a"], ["b"]], clock, retry={"max_attempts": 5}, budget={"max_retries_per_request": 1})
    err, attempts = await fail(plan, ups)
    assert len(attempts) == 2 and err.status == 503
    plan = plan_for([["a"], ["b"]], clock, budget={"max_retries_per_request": 0})
    err, attempts = await fail(plan, FakeUpstreams(clock, {"a": [Reply(error=upstream_error(529))]}))
    assert len(attempts) == 1 and not any(k == "x-should-retry" for k, _ in err.headers)


async def test_budget_caps_retries_as_a_share_of_traffic() -> None:
    clock = FakeClock(start=0.0)
    plan = plan_for(
        [["a"]], clock, budget={"ratio": 0.0, "min_retries": 3, "window": 60}, breaker={"enabled": False}
    )
    ups = FakeUpstreams(clock, {}, default=lambda: Reply(error=upstream_error(500)))
    counts = []
    for _ in range(5):
        _, attempts = await fail(plan, ups)
        counts.append(len(attempts))
    assert counts == [2, 2, 2, 1, 1]  # 3 retries in the window, then none


async def test_first_byte_timeout_cancels_the_attempt_and_retries() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(hang=True)]})
    _, attempts = await run(plan_for([["a", "b"]], clock, timeouts={"first_byte": 5}), ups)
    assert outcomes(attempts) == [("a", "timeout_error", 0.0), ("b", "ok", 0.5)]
    assert ups.cancelled == ["a"] and clock.monotonic() == 5.5


async def test_client_deadline_stops_retrying() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(error=upstream_error(429, [("retry-after", "5")]))]})
    attempts: list[AttemptRecord] = []
    from .policy_fakes import make_call

    with pytest.raises(SidecarError) as info:
        await execute(make_call(deadline=3.0), plan_for([["a"]], clock), ups.send, attempts=attempts)
    assert info.value.status == 429 and len(attempts) == 1 and clock.monotonic() == 0.0


# -- streams -------------------------------------------------------------------------------------


async def test_in_band_error_before_first_delta_is_retried_invisibly() -> None:
    clock = FakeClock(start=0.0)
    overloaded = [[message_start()], [ping()], [error_event("overloaded_error")]]
    ups = FakeUpstreams(clock, {"a": [Reply(stream=overloaded), Reply(stream=full_stream("x", "y"))]})
    answer, attempts = await run(plan_for([["a"]], clock, fallback_on=[]), ups, stream=True)
    assert outcomes(attempts) == [("a", "overloaded_error", 0.0), ("a", "ok", 0.5)]
    assert ups.streams[0].closed
    assert answer.events is not None
    out = await drain(answer.events)
    assert texts(out) == ["x", "y"]
    assert [e.name for e in out].count("message_start") == 1 and "error" not in [e.name for e in out]


async def test_in_band_overload_falls_back_like_a_529() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(
        clock,
        {"a": [Reply(stream=[[message_start()], [error_event()]])], "b": [Reply(stream=full_stream("z"))]},
    )
    answer, attempts = await run(plan_for([["a"], ["b"]], clock), ups, stream=True)
    assert ups.order() == ["a", "b"] and answer.events is not None
    assert texts(await drain(answer.events)) == ["z"]


async def test_broken_stream_before_first_delta_is_retried() -> None:
    from sidecar.errors import UpstreamError

    clock = FakeClock(start=0.0)
    broken = [[message_start()], [block_start()], UpstreamError("closed the stream before it ended")]
    ups = FakeUpstreams(clock, {"a": [Reply(stream=broken)], "b": [Reply(stream=full_stream("ok"))]})
    answer, attempts = await run(plan_for([["a", "b"]], clock), ups, stream=True)
    assert [a.upstream for a in attempts] == ["a", "b"] and answer.events is not None
    assert texts(await drain(answer.events)) == ["ok"]


async def test_error_after_first_delta_is_never_retried() -> None:
    clock = FakeClock(start=0.0)
    script = [[message_start()], [block_start()], [delta("a")], [error_event("overloaded_error")]]
    ups = FakeUpstreams(clock, {"a": [Reply(stream=script)]})
    answer, attempts = await run(plan_for([["a", "b"]], clock), ups, stream=True)
    assert len(attempts) == 1 and answer.events is not None
    out = await drain(answer.events)
    assert texts(out) == ["a"] and out[-1].name == "error"
    assert ups.order() == ["a"]


async def test_stall_mid_stream_after_commit_ends_with_timeout_error() -> None:
    clock = FakeClock(start=0.0)
    script = [[message_start()], [block_start()], [delta("a")], HANG]
    ups = FakeUpstreams(clock, {"a": [Reply(stream=script)]})
    answer, _ = await run(plan_for([["a"]], clock, timeouts={"idle": 30}), ups, stream=True)
    assert answer.events is not None
    out = await drain(answer.events)
    assert texts(out) == ["a"] and out[-1].data["error"]["type"] == "timeout_error"
    assert ups.streams[0].closed


async def test_stall_before_first_delta_past_idle_is_retried() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(
        clock, {"a": [Reply(stream=[[message_start()], HANG])], "b": [Reply(stream=full_stream("b"))]}
    )
    plan = plan_for([["a", "b"]], clock, hold_limit=5, timeouts={"idle": 8})
    answer, attempts = await run(plan, ups, stream=True)
    # The hold limit (5 s) passes first: the stream is committed, so the stall is not retried.
    assert len(attempts) == 1 and answer.events is not None
    out = await drain(answer.events)
    assert out[-1].data["error"]["type"] == "timeout_error"
    ups = FakeUpstreams(
        clock, {"a": [Reply(stream=[[message_start()], HANG])], "b": [Reply(stream=full_stream("b"))]}
    )
    plan = plan_for([["a", "b"]], clock, hold_limit=5, timeouts={"idle": 3})  # a stall shorter than the hold
    answer, attempts = await run(plan, ups, stream=True)
    assert [(a.upstream, a.outcome) for a in attempts] == [("a", "timeout_error"), ("b", "ok")]


# -- breakers and balancing ----------------------------------------------------------------------


async def test_broken_target_is_ejected_then_readmitted() -> None:
    clock = FakeClock(start=0.0)
    plan = plan_for(
        [["a", "b"]],
        clock,
        breaker={"consecutive_failures": 2, "cooldown": 30, "min_calls": 0},
        retry={"base_backoff": 0.0},
    )
    ups = FakeUpstreams(clock, {"a": [Reply(error=UpstreamConnectError("down"))] * 2})
    for _ in range(4):
        await run(plan, ups)
    # a failed twice (the retries went to b), then its breaker opened: only b is called.
    assert ups.order() == ["a", "b", "b", "a", "b", "b"]
    breaker_a = plan.groups[0].targets[0].breaker
    assert breaker_a.state is BreakerState.OPEN
    clock.advance(30)
    ups.calls.clear()
    for _ in range(4):
        await run(plan, ups)
    assert "a" in ups.order() and breaker_a.state is BreakerState.CLOSED


async def test_all_breakers_open_is_an_overload_with_retry_after() -> None:
    clock = FakeClock(start=0.0)
    plan = plan_for([["a"]], clock, breaker={"consecutive_failures": 1, "cooldown": 12, "min_calls": 0})
    ups = FakeUpstreams(clock, {}, default=lambda: Reply(error=upstream_error(500)))
    await fail(plan, ups)
    ups.calls.clear()
    err, attempts = await fail(plan, ups)
    assert isinstance(err, Overloaded) and attempts == [] and ups.calls == []
    assert ("retry-after", "12") in err.headers


async def test_weighted_distribution_over_a_seeded_run() -> None:
    clock = FakeClock(start=0.0)
    plan = plan_for([[("a", 3), ("b", 1)]], clock, balance="random", seed=1234)
    ups = FakeUpstreams(clock, {})
    for _ in range(2000):
        await run(plan, ups)
    share = Counter(ups.order())["a"] / 2000
    assert abs(share - 0.75) < 0.03


# -- cancellation --------------------------------------------------------------------------------


async def test_cancelling_the_caller_cancels_the_attempt_in_flight() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(hang=True)]})
    from .policy_fakes import make_call

    attempts: list[AttemptRecord] = []
    task = asyncio.ensure_future(execute(make_call(), plan_for([["a"]], clock), ups.send, attempts=attempts))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and ups.cancelled == ["a"]
    assert [a.outcome for a in attempts] == ["cancelled"]


async def test_cancelling_the_caller_closes_the_held_stream() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(stream=[[message_start()], HANG])]})
    from .policy_fakes import make_call

    plan = plan_for([["a"]], clock)
    task = asyncio.ensure_future(execute(make_call(stream=True), plan, ups.send))
    for _ in range(10):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and ups.streams[0].closed
    # A cancelled attempt says nothing about the target's health.
    assert plan.groups[0].targets[0].breaker.state is BreakerState.CLOSED


async def test_timeout_error_is_a_504() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {}, default=lambda: Reply(hang=True))
    err, attempts = await fail(plan_for([["a"]], clock, timeouts={"first_byte": 2}), ups)
    assert isinstance(err, Timeout) and err.status == 504 and len(attempts) == 2


async def test_529_without_a_fallback_group_is_retried_in_place() -> None:
    clock = FakeClock(start=0.0)
    ups = FakeUpstreams(clock, {"a": [Reply(error=upstream_error(529))]})
    _, attempts = await run(plan_for([["a"]], clock), ups)
    assert outcomes(attempts) == [("a", "overloaded_error", 0.0), ("a", "ok", 0.5)]


@pytest.mark.parametrize("outcome", ["stream", "error"])
async def test_cancelled_as_its_attempt_finished_closes_or_retrieves_what_it_produced(
    outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the cancellation storm: a call cancelled in the same turn as its attempt finished
    # left the attempt's result alone: an error was "never retrieved" (a traceback in the log),
    # and a stream answer was never closed (its upstream request left open).
    from sidecar.core import Target

    from .policy_fakes import FakeStream, full_stream, make_call

    clock = FakeClock(start=0.0)
    plan = plan_for([["a"]], clock)
    stream = FakeStream(clock, full_stream("x"))
    outer: asyncio.Task[Answer] | None = None

    async def send(target: Target) -> Answer:
        assert outer is not None
        outer.cancel()  # the client leaves just as the attempt ends
        if outcome == "error":
            raise upstream_error(529)
        return Answer(events=stream.stream)

    outer = asyncio.ensure_future(execute(make_call(stream=True), plan, send))
    with pytest.raises(asyncio.CancelledError):
        await outer
    if outcome == "stream":
        assert stream.closed
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
