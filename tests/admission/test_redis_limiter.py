"""The Redis limiter against a real redis-server: replicas share one limit; Redis down never hangs."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from sidecar.admission.limiter import Grant, RedisLimiter, Refusal, Usage, build_limiter
from sidecar.config.admission import AdmissionConfig, Limits, RedisBackend

from .conftest import RedisServer, free_port

Factory = Callable[..., RedisLimiter]


def granted(outcome: Grant | Refusal) -> Grant:
    assert isinstance(outcome, Grant), outcome
    return outcome


def refused(outcome: Grant | Refusal) -> Refusal:
    assert isinstance(outcome, Refusal), outcome
    return outcome


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[Factory]:
    """Build limiters as separate sidecar replicas would: each its own client, one shared prefix."""
    prefix = f"test:{uuid.uuid4().hex}:"
    made: list[RedisLimiter] = []

    def make(**kwargs: object) -> RedisLimiter:
        kwargs.setdefault("key_prefix", prefix)
        kwargs.setdefault("timeout", 1.0)
        lim = RedisLimiter.from_url(redis_server.url, **kwargs)  # type: ignore[arg-type]
        made.append(lim)
        return lim

    yield make
    for lim in made:
        await lim.close()


async def test_two_replicas_share_one_requests_limit(replicas: Factory) -> None:
    a, b = replicas(), replicas()
    limits = Limits(requests_per_minute=3)
    remaining = [
        granted(await a.acquire("team", limits, 1)).states["requests"].remaining,
        granted(await b.acquire("team", limits, 1)).states["requests"].remaining,
        granted(await a.acquire("team", limits, 1)).states["requests"].remaining,
    ]
    assert remaining == [2, 1, 0]
    for lim in (a, b):
        refusal = refused(await lim.acquire("team", limits, 1))
        assert refusal.reason == "requests"
        assert 19.0 < refusal.retry_after <= 20.0
        assert refusal.states["requests"].remaining == 0
        assert refusal.states["requests"].reset == pytest.approx(time.time() + 60, abs=2)
    granted(await b.acquire("someone-else", limits, 1))
    assert not a.unavailable and a.unavailable_total == 0


async def test_two_replicas_share_concurrency(replicas: Factory) -> None:
    a, b = replicas(), replicas()
    limits = Limits(concurrency=2)
    first = granted(await a.acquire("team", limits, 1))
    granted(await b.acquire("team", limits, 1))
    refusal = refused(await a.acquire("team", limits, 1))
    assert refusal.reason == "concurrency"
    await b.release(first)  # any replica can end a grant
    granted(await a.acquire("team", limits, 1))


async def test_tokens_reconcile_and_stream_through_redis(replicas: Factory) -> None:
    a, b = replicas(), replicas()
    limits = Limits(input_tokens_per_minute=1000, output_tokens_per_minute=1000, tokens_per_minute=2000)
    grant = granted(await a.acquire("team", limits, 500))
    assert grant.states["input_tokens"].remaining == 500
    await a.charge(grant, 50)
    await a.release(grant, Usage(input_tokens=100, output_tokens=80))
    probe = granted(await b.acquire("team", limits, 0))
    # a little refills while the test runs: remaining may be a token or two higher
    assert 900 <= probe.states["input_tokens"].remaining <= 902
    assert 920 <= probe.states["output_tokens"].remaining <= 922
    assert 1820 <= probe.states["tokens"].remaining <= 1823
    await b.release(probe)


async def test_a_cost_above_the_limit_is_never_admitted(replicas: Factory) -> None:
    lim = replicas(max_wait=5.0)
    refusal = refused(await lim.acquire("team", Limits(input_tokens_per_minute=100), 101))
    assert not refusal.retryable and refusal.reason == "input_tokens" and refusal.waited == 0.0


async def test_queue_wait_on_redis(replicas: Factory) -> None:
    # A short "minute" (0.5 s): 2 requests refill one every 0.25 s.
    a, b = replicas(period=0.5, max_wait=1.0, poll_interval=0.02), replicas(period=0.5)
    limits = Limits(requests_per_minute=2)
    granted(await b.acquire("team", limits, 1))
    granted(await b.acquire("team", limits, 1))
    start = time.monotonic()
    grant = granted(await a.acquire("team", limits, 1))
    assert 0.15 < time.monotonic() - start < 0.9
    assert grant.waited > 0.15


async def test_state_expires_in_redis(replicas: Factory, redis_server: RedisServer) -> None:
    lim = replicas()
    grant = granted(await lim.acquire("team", Limits(requests_per_minute=60, concurrency=1), 1))
    ttl = await lim.client.call("PTTL", f"{lim.key_prefix}{{team}}:tat")
    assert 0 < ttl <= 2000  # one request of 60/min refills in 1 s
    assert await lim.client.call("ZCARD", f"{lim.key_prefix}{{team}}:leases") == 1
    await lim.release(grant)
    assert await lim.client.call("ZCARD", f"{lim.key_prefix}{{team}}:leases") == 0


def test_build_limiter_from_config(redis_server: RedisServer) -> None:
    config = AdmissionConfig(backend=RedisBackend(url=redis_server.url, fail_open=False, timeout=0.1))
    lim = build_limiter(config)
    assert isinstance(lim, RedisLimiter)
    assert lim.fail_open is False and lim.timeout == 0.1 and lim.max_wait == 5.0


# --- Redis unreachable ----------------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung Redis)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("hang", [False, True], ids=["refused", "hung"])
async def test_redis_down_fail_open_admits_within_the_timeout(
    hang: bool, silent_server: int, caplog: pytest.LogCaptureFixture
) -> None:
    port = silent_server if hang else free_port()
    lim = RedisLimiter.from_url(f"redis://127.0.0.1:{port}/0", timeout=0.2, fail_open=True, max_wait=5.0)
    limits = Limits(requests_per_minute=1, concurrency=1)
    caplog.set_level(logging.WARNING, logger="sidecar.admission")
    try:
        for _ in range(3):
            start = time.monotonic()
            grant = granted(await lim.acquire("team", limits, 10))
            assert time.monotonic() - start < 0.6
            assert grant.degraded and grant.states == {}
            await lim.charge(grant, 5)  # no call: a degraded grant charges nothing
            await lim.release(grant)
    finally:
        await lim.close()
    assert lim.unavailable and lim.unavailable_total == 3
    warnings = [r for r in caplog.records if r.name == "sidecar.admission"]
    assert len(warnings) == 1 and "admitting without limits" in warnings[0].getMessage()


@pytest.mark.parametrize("hang", [False, True], ids=["refused", "hung"])
async def test_redis_down_fail_closed_refuses_within_the_timeout(hang: bool, silent_server: int) -> None:
    port = silent_server if hang else free_port()
    lim = RedisLimiter.from_url(f"redis://127.0.0.1:{port}/0", timeout=0.2, fail_open=False, max_wait=5.0)
    try:
        start = time.monotonic()
        refusal = refused(await lim.acquire("team", Limits(requests_per_minute=100), 10))
        assert time.monotonic() - start < 0.6  # no queue wait on a dead backend either
    finally:
        await lim.close()
    assert refusal.reason == "unavailable" and refusal.retry_after == 1.0 and not refusal.retryable
    assert lim.unavailable_total == 1


async def test_recovery_is_logged(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    lim = RedisLimiter.from_url(redis_server.url, timeout=0.5, key_prefix=f"test:{uuid.uuid4().hex}:")
    caplog.set_level(logging.WARNING, logger="sidecar.admission")
    lim.unavailable = True  # as after an outage
    try:
        granted(await lim.acquire("team", Limits(requests_per_minute=5), 1))
    finally:
        await lim.close()
    assert not lim.unavailable
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_a_changed_limit_counts_the_used_units_against_the_new_one(replicas: Factory) -> None:
    a = replicas()
    for _ in range(2):
        granted(await a.acquire("team", Limits(requests_per_minute=2), 1))
    refused(await a.acquire("team", Limits(requests_per_minute=2), 1))
    # Raised (a reload): 2 of 5 used, so 3 more now, not after the old window drained.
    raised = Limits(requests_per_minute=5)
    assert [granted(await a.acquire("team", raised, 1)).states["requests"].remaining for _ in range(3)] == [
        2,
        1,
        0,
    ]
    refused(await a.acquire("team", raised, 1))
    # Lowered: the 5 units used are 150 s of debt at 2 per minute; one more fits in 120 s.
    lowered = refused(await a.acquire("team", Limits(requests_per_minute=2), 1))
    assert lowered.states["requests"].remaining == 0 and 119.0 < lowered.retry_after <= 120.0
