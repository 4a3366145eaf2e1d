"""Admission: the object the core calls. 401/403/429 with headers, tickets, shadow mode."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sidecar.admission.gate import Admission, Ticket, usage_from
from sidecar.admission.keys import KeyStore, hash_key
from sidecar.admission.limiter import MemoryLimiter, RedisLimiter, Usage
from sidecar.config.admission import AdmissionConfig, ClientKey, Limits, QueueConfig, Tier
from sidecar.core.clock import FakeClock
from sidecar.core.estimate import estimate_input_tokens
from sidecar.errors import AuthenticationFailed, PermissionDenied, RateLimited

from .conftest import RedisServer

WALL = 1_700_000_000.0
TIERS = {
    "basic": Tier(requests_per_minute=2, tokens_per_minute=1000, concurrency=10),
    "pro": Tier(requests_per_minute=200, tokens_per_minute=400_000, concurrency=40, models=("claude-*",)),
    "open": Tier(),
}
KEYS = [
    ClientKey(name="ci-bot", sha256=hash_key("sk-basic"), tier="basic"),
    ClientKey(name="research", sha256=hash_key("sk-pro"), tier="pro", limits=Limits(concurrency=1)),
    ClientKey(name="admin", sha256=hash_key("sk-open"), tier="open"),
]


def admission(*, shadow: bool = False, max_wait: float = 0.0, clock: FakeClock | None = None) -> Admission:
    clock = clock or FakeClock(start=0.0, wall=WALL, autojump=False)
    limiter = MemoryLimiter(period=60.0, max_wait=max_wait, clock=clock)
    return Admission(KeyStore.from_keys(KEYS, TIERS), limiter, shadow=shadow)


async def test_admit_returns_a_ticket_with_ratelimit_headers() -> None:
    gate = admission()
    ticket = await gate.admit({"x-api-key": "sk-basic"}, "claude-sonnet-4-6", 100)
    assert ticket.key_name == "ci-bot" and ticket.tier == "basic"
    headers = dict(ticket.headers())
    assert headers["anthropic-ratelimit-requests-limit"] == "2"
    assert headers["anthropic-ratelimit-requests-remaining"] == "1"
    assert headers["anthropic-ratelimit-tokens-remaining"] == "900"
    assert headers["anthropic-ratelimit-tokens-reset"].endswith("Z")
    await ticket.finish({"input_tokens": 100, "output_tokens": 20})
    assert gate.stats.admitted == 1


async def test_auth_errors(caplog: pytest.LogCaptureFixture) -> None:
    gate = admission()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationFailed, match="missing API key"):
        await gate.admit({}, "m", 1)
    with pytest.raises(AuthenticationFailed, match="invalid API key"):
        await gate.admit({"authorization": "Bearer sk-nope-secret"}, "m", 1)
    with pytest.raises(AuthenticationFailed, match="malformed"):
        await gate.admit({"x-api-key": "sk-\x01"}, "m", 1)
    with pytest.raises(PermissionDenied, match="may not use model 'gpt-4o'"):
        await gate.admit({"x-api-key": "sk-pro"}, "gpt-4o", 1)
    assert gate.stats.refused == {"authentication": 3, "permission": 1}
    assert not [r for r in caplog.records if r.name.startswith("sidecar")]  # nothing logged
    assert "sk-nope-secret" not in caplog.text


async def test_rate_limited_carries_retry_after_and_headers() -> None:
    gate = admission()
    for _ in range(2):
        await gate.admit({"x-api-key": "sk-basic"}, "m", 10)
    with pytest.raises(RateLimited) as info:
        await gate.admit({"x-api-key": "sk-basic"}, "m", 10)
    error = info.value
    assert error.status == 429 and error.error_type == "rate_limit_error"
    headers = dict(error.headers)
    assert headers["retry-after"] == "30"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert gate.stats.refused == {"requests": 1}


async def test_too_large_says_do_not_retry() -> None:
    gate = admission()
    with pytest.raises(RateLimited) as info:
        await gate.admit({"x-api-key": "sk-basic"}, "m", 5000)
    assert ("x-should-retry", "false") in info.value.headers


async def test_queue_wait_is_used() -> None:
    gate = admission(max_wait=60.0, clock=FakeClock(start=0.0, wall=WALL))
    for _ in range(3):
        await gate.admit({"x-api-key": "sk-basic"}, "m", 1)
    assert gate.stats.admitted == 3 and gate.stats.waited == 1


async def test_concurrency_and_release() -> None:
    gate = admission()
    first = await gate.admit({"x-api-key": "sk-pro"}, "claude-opus-4-1", 1)
    with pytest.raises(RateLimited) as info:
        await gate.admit({"x-api-key": "sk-pro"}, "claude-opus-4-1", 1)
    assert dict(info.value.headers)["retry-after"] == "1"
    await first.release()
    async with await gate.admit({"x-api-key": "sk-pro"}, "claude-opus-4-1", 1):
        pass  # released on exit
    await gate.admit({"x-api-key": "sk-pro"}, "claude-opus-4-1", 1)


async def test_output_charged_in_batches_and_reconciled() -> None:
    gate = admission()
    gate.limiter.charge_batch = 10
    ticket = await gate.admit({"x-api-key": "sk-basic"}, "m", 100)
    assert ticket.grant is not None
    for _ in range(4):
        await ticket.charge_output(3)
    assert ticket.grant.output_charged == 12  # one batch of 12 went; nothing pending yet
    await ticket.charge_output(3)
    assert ticket.grant.output_charged == 12  # 3 pending
    await ticket.finish(
        {
            "input_tokens": 40,
            "cache_creation_input_tokens": 10,
            "cache_read_input_tokens": 999,
            "output_tokens": 20,
        }
    )
    assert ticket.grant.input_charged == 50 and ticket.grant.output_charged == 20
    await ticket.charge_output(100)  # after the end: ignored
    await ticket.release()
    probe = await gate.admit({"x-api-key": "sk-basic"}, "m", 0)
    assert dict(probe.headers())["anthropic-ratelimit-tokens-remaining"] == str(1000 - 70)


async def test_release_without_usage_keeps_what_streamed() -> None:
    gate = admission()
    ticket = await gate.admit({"x-api-key": "sk-basic"}, "m", 100)
    await ticket.charge_output(7)  # pending (batch 1: sent at once)
    await ticket.release()
    assert ticket.grant is not None and ticket.grant.output_charged == 7 and ticket.grant.input_charged == 100


async def test_a_key_without_limits_takes_no_limiter_call() -> None:
    gate = admission()
    ticket = await gate.admit({"x-api-key": "sk-open"}, "anything", 10**9)
    assert ticket.grant is None and ticket.headers() == []
    await ticket.charge_output(5)
    await ticket.finish(None)


async def test_shadow_mode_never_refuses() -> None:
    gate = admission(shadow=True)
    tickets: list[Ticket] = []
    for _ in range(4):
        tickets.append(await gate.admit({"x-api-key": "sk-basic"}, "m", 10))
    assert all(t.headers() == [] for t in tickets)
    unknown = await gate.admit({"x-api-key": "sk-unknown"}, "m", 10)
    assert unknown.key_name is None
    denied = await gate.admit({"x-api-key": "sk-pro"}, "gpt-4o", 10)
    assert denied.key_name == "research"
    assert gate.stats.shadow_refused == {"requests": 2, "authentication": 1, "permission": 1}
    assert gate.stats.refused == {}
    for ticket in tickets:
        await ticket.finish({"input_tokens": 10, "output_tokens": 1})


def test_usage_from() -> None:
    assert usage_from(None, input_default=5, output_default=6) == Usage(5, 6)
    assert usage_from({"output_tokens": 9}, input_default=5, output_default=6) == Usage(5, 9)
    assert usage_from(
        {"input_tokens": True, "output_tokens": -1}, input_default=5, output_default=6
    ) == Usage(5, 6)
    assert usage_from(Usage(1, 2), input_default=5, output_default=6) == Usage(1, 2)


async def test_estimate_feeds_admission() -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hello " * 200}]}
    estimate = estimate_input_tokens(body)
    gate = admission()
    ticket = await gate.admit({"x-api-key": "sk-basic"}, "m", estimate)
    assert ticket.grant is not None and ticket.grant.input_charged == estimate > 200


async def test_from_config_memory_and_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  - {{name: filed, sha256: {hash_key('sk-file')}, tier: basic}}\n")
    config = AdmissionConfig(tiers=TIERS, keys=KEYS, keys_file=str(path), queue=QueueConfig(max_wait=0))
    gate = Admission.from_config(config)
    assert isinstance(gate.limiter, MemoryLimiter) and not gate.backend_unavailable
    assert (await gate.admit({"x-api-key": "sk-file"}, "m", 1)).key_name == "filed"
    assert (await gate.admit({"x-api-key": "sk-basic"}, "m", 1)).key_name == "ci-bot"
    await gate.close()


async def test_from_config_redis(redis_server: RedisServer) -> None:
    from sidecar.config.admission import RedisBackend

    config = AdmissionConfig(
        tiers=TIERS,
        keys=KEYS,
        backend=RedisBackend(url=redis_server.url, key_prefix="test:gate:"),
        queue=QueueConfig(max_wait=0),
    )
    replicas = [Admission.from_config(config), Admission.from_config(config)]
    try:
        assert isinstance(replicas[0].limiter, RedisLimiter)
        await replicas[0].admit({"x-api-key": "sk-basic"}, "m", 1)
        await replicas[1].admit({"x-api-key": "sk-basic"}, "m", 1)
        with pytest.raises(RateLimited):
            await replicas[0].admit({"x-api-key": "sk-basic"}, "m", 1)
    finally:
        for gate in replicas:
            await gate.close()


async def test_a_reload_shares_the_limiter_and_the_last_one_closes_it() -> None:
    config = AdmissionConfig(tiers=TIERS, keys=KEYS, queue=QueueConfig(max_wait=0.0))
    first = Admission.from_config(config)
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    first.limiter.close = close  # type: ignore[method-assign]
    second = Admission.from_config(
        AdmissionConfig(tiers=TIERS, keys=KEYS, queue=QueueConfig(max_wait=2.0)), previous=first
    )
    third = Admission.from_config(config, previous=second)
    assert second.limiter is first.limiter is third.limiter and third.stats is first.stats
    assert first.limiter.max_wait == 0.0  # the newest settings apply
    # Snapshots retire in any order; the limiter closes once, with the last of them.
    await second.close()
    await first.close()
    await first.close()
    assert closed == []
    await third.close()
    assert closed == [True]
    # Another backend: a limiter of its own, the counters still carried on.
    other = Admission.from_config(AdmissionConfig(tiers=TIERS, keys=KEYS, period=30.0), previous=third)
    assert other.limiter is not third.limiter and other.stats is third.stats
