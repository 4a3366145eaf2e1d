"""StreamHold: failures before the first content delta are retryable and leak nothing; after it
they end the stream with one `error` event."""

from __future__ import annotations

import asyncio

from sidecar.core.clock import FakeClock
from sidecar.errors import Timeout, UpstreamError
from sidecar.routing.policy import hold

from .policy_fakes import (
    HANG,
    FakeStream,
    block_start,
    delta,
    drain,
    error_event,
    full_stream,
    message_start,
    ping,
    tail,
    texts,
)


async def test_commits_on_first_delta_and_replays_everything_once() -> None:
    clock = FakeClock()
    fake = FakeStream(clock, full_stream("a", "b", "c"))
    result = await hold(fake.stream, 10, clock)
    assert result.committed and result.reason == "content" and result.held == 3
    assert result.stream is not None
    out = await drain(result.stream)
    assert [e.name for e in out] == [e.name for e in fake.sent]
    assert texts(out) == ["a", "b", "c"]
    assert fake.closed


async def test_held_events_leave_as_one_batch() -> None:
    clock = FakeClock()
    fake = FakeStream(clock, full_stream("a"))
    result = await hold(fake.stream, 10, clock)
    assert result.stream is not None
    batches = [b async for b in result.stream.batches()]
    assert [e.name for e in batches[0]] == ["message_start", "content_block_start", "content_block_delta"]
    await result.stream.aclose()


async def test_in_band_error_before_first_delta_fails_and_leaks_nothing() -> None:
    clock = FakeClock()
    fake = FakeStream(clock, [[message_start()], [ping()], [error_event("overloaded_error")], [delta("x")]])
    result = await hold(fake.stream, 10, clock, request_id="req_s")
    assert not result.committed and result.reason == "error" and result.held == 2
    assert result.error is not None
    assert (result.error.status, result.error.error_type, result.error.message) == (
        529,
        "overloaded_error",
        "Overloaded",
    )
    assert result.error.request_id == "req_s"
    assert fake.closed


async def test_error_in_the_same_batch_before_the_delta_still_fails() -> None:
    clock = FakeClock()
    fake = FakeStream(clock, [[message_start(), error_event("api_error", "boom"), delta("x")]])
    result = await hold(fake.stream, 10, clock)
    assert result.error is not None and result.error.status == 500 and fake.closed


async def test_broken_stream_before_first_delta_fails() -> None:
    clock = FakeClock()
    fake = FakeStream(clock, [[message_start()], [block_start()], UpstreamError("closed before it ended")])
    result = await hold(fake.stream, 10, clock)
    assert isinstance(result.error, UpstreamError) and fake.closed


async def test_stream_ending_early_without_content_fails() -> None:
    clock = FakeClock()
    fake = FakeStream(clock, [[message_start()]])
    result = await hold(fake.stream, 10, clock, upstream="a")
    assert isinstance(result.error, UpstreamError)
    assert "upstream 'a' ended the stream before any content" in result.error.message


async def test_complete_stream_without_content_commits() -> None:
    clock = FakeClock()
    fake = FakeStream(clock, [[message_start()], tail()[1:]])
    result = await hold(fake.stream, 10, clock)
    assert result.stream is not None and result.reason == "complete"
    assert [e.name for e in await drain(result.stream)] == ["message_start", "message_delta", "message_stop"]


async def test_error_after_first_delta_passes_through_and_ends() -> None:
    clock = FakeClock()
    fake = FakeStream(
        clock, [[message_start()], [block_start()], [delta("a")], [error_event()], [delta("never")]]
    )
    ends: list[object] = []
    result = await hold(fake.stream, 10, clock, on_end=ends.append)
    assert result.stream is not None
    out = await drain(result.stream)
    assert [e.name for e in out][-2:] == ["content_block_delta", "error"]
    assert texts(out) == ["a"]
    assert len(ends) == 1 and getattr(ends[0], "error_type", None) == "overloaded_error"


async def test_broken_stream_after_first_delta_becomes_one_error_event() -> None:
    clock = FakeClock()
    script = [[message_start()], [block_start()], [delta("a")], [delta("b")], UpstreamError("reset")]
    fake = FakeStream(clock, script)
    result = await hold(fake.stream, 10, clock, request_id="req_s")
    assert result.stream is not None
    out = await drain(result.stream)
    assert texts(out) == ["a", "b"]
    assert out[-1].name == "error"
    assert out[-1].data == {
        "type": "error",
        "error": {"type": "api_error", "message": "reset"},
        "request_id": "req_s",
    }
    assert fake.closed


async def test_hold_limit_commits_then_later_failure_is_an_error_event() -> None:
    clock = FakeClock(start=0.0)
    # Pings for 12 s, no content: the hold limit (10 s) passes mid-read and the read carries over.
    script = [
        [message_start()],
        6.0,
        [ping()],
        6.0,
        [ping()],
        [block_start()],
        [delta("a")],
        1.0,
        Timeout("stall"),
    ]
    fake = FakeStream(clock, script)
    result = await hold(fake.stream, 10, clock)
    assert result.stream is not None and result.reason == "limit"
    assert clock.monotonic() == 10.0 and result.held == 2  # message_start and the first ping
    out = await drain(result.stream)
    assert [e.name for e in out] == [
        "message_start",
        "ping",
        "ping",
        "content_block_start",
        "content_block_delta",
        "error",
    ]
    assert out[-1].data["error"]["type"] == "timeout_error"


async def test_hold_limit_with_a_silent_upstream_commits_nothing_yet() -> None:
    clock = FakeClock(start=0.0)
    fake = FakeStream(clock, [20.0, *full_stream("a")])
    result = await hold(fake.stream, 10, clock)
    assert result.stream is not None and result.held == 0 and clock.monotonic() == 10.0
    assert texts(await drain(result.stream)) == ["a"]
    assert clock.monotonic() == 20.0


async def test_idle_timeout_before_commit_is_a_retryable_failure() -> None:
    clock = FakeClock(start=0.0)
    fake = FakeStream(clock, [[message_start()], HANG])
    result = await hold(fake.stream, 10, clock, idle=4)
    assert isinstance(result.error, Timeout) and "idle" in result.error.message
    assert clock.monotonic() == 4.0 and fake.closed


async def test_idle_timeout_after_commit_ends_with_timeout_error() -> None:
    clock = FakeClock(start=0.0)
    fake = FakeStream(clock, [[message_start()], [block_start()], [delta("a")], HANG])
    result = await hold(fake.stream, 2, clock, idle=5)
    assert result.stream is not None
    out = await drain(result.stream)
    assert texts(out) == ["a"] and out[-1].data["error"]["type"] == "timeout_error"
    assert clock.monotonic() == 5.0 and fake.closed


async def test_cancelled_while_holding_closes_the_stream() -> None:
    clock = FakeClock(start=0.0)
    fake = FakeStream(clock, [[message_start()], HANG])
    task = asyncio.ensure_future(hold(fake.stream, 10, clock))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and fake.closed


async def test_closing_a_committed_stream_early_closes_the_source() -> None:
    clock = FakeClock(start=0.0)
    fake = FakeStream(clock, [[message_start()], [block_start()], [delta("a")], HANG])
    result = await hold(fake.stream, 10, clock)
    assert result.stream is not None
    async for event in result.stream:
        if event.name == "content_block_delta":
            break
    await result.stream.aclose()
    assert fake.closed


def test_a_deadline_timer_firing_early_without_an_idle_timeout_is_a_deadline_timeout() -> None:
    # Found by the cancellation storm: with only a deadline (no idle timeout), a timer that
    # fired a moment before the clock reached the deadline formatted the idle timeout, None,
    # and the stream failed with a TypeError (an 'Internal server error' and a traceback).
    from sidecar.routing.policy.hold import _timeout

    clock = FakeClock(start=100.0)
    error = _timeout(None, 100.001, clock, "u")
    assert isinstance(error, Timeout)
    assert error.message == "upstream 'u' did not finish the stream before the deadline"
    assert _timeout(5.0, None, clock, "u").message == "upstream 'u' sent nothing for 5 s (idle timeout)"
