"""The local batch runner: entries go through the real pipeline (aliases, renames, the mock
model), at most ``concurrency`` at once; leases of a dead runner expire and its entries run
again, finished ones never; cancel, expiry, and rate limits that wait instead of failing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sidecar.batches.runner import BatchRunner, fixed_snapshot
from sidecar.batches.sqlite import SqliteStore
from sidecar.batches.store import BatchRecord, EntryKey, NewEntry
from sidecar.config.model import BatchesConfig
from sidecar.core import Answer, Call, Target
from sidecar.core.clock import SystemClock
from sidecar.errors import RateLimited
from sidecar.pipeline import Pipeline
from tests.inprocess import message_answer, pipeline

MOCK = {
    "upstreams": {"m": {"provider": "mock"}},
    "routes": [{"match": "*", "upstream": "m"}],
}
FAST = BatchesConfig(concurrency=2, poll_interval=0.02, lease_seconds=30)


def params(text: str = "hello", model: str = "claude-sonnet-4-6", **extra: Any) -> bytes:
    body = {"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": text}], **extra}
    return msgspec.json.encode(body)


async def add_batch(
    store: SqliteStore, batch_id: str, entries: list[bytes], *, expires_in: float = 86400
) -> None:
    now = time.time()
    record = BatchRecord(
        id=batch_id,
        owner="",
        created_at=now,
        expires_at=now + expires_in,
        total=len(entries),
        headers={"anthropic-version": "2023-06-01"},
    )
    await store.create(record, [NewEntry(f"e{i}", p) for i, p in enumerate(entries)])


async def ended(store: SqliteStore, batch_id: str, timeout: float = 10) -> BatchRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await store.get(batch_id)
        assert got is not None
        if got.status == "ended":
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"batch {batch_id} did not end: {await store.get(batch_id)}")


async def results(store: SqliteStore, batch_id: str) -> dict[str, dict[str, Any]]:
    raw = b"".join([c async for c in store.results(batch_id)])
    return {x["custom_id"]: x["result"] for x in map(json.loads, raw.splitlines())}


@pytest.fixture()
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "b.sqlite3")
    yield s
    await s.aclose()


async def run(store: SqliteStore, p: Pipeline, config: BatchesConfig = FAST, **kw: Any) -> BatchRunner:
    runner = BatchRunner(store, fixed_snapshot(p), config, **kw)
    runner.start()
    return runner


async def test_entries_run_through_the_pipeline_on_the_mock(store: SqliteStore) -> None:
    await add_batch(
        store,
        "b1",
        [params("[mock echo] one two"), params("[mock error=invalid_request_error] x"), params("hi")],
    )
    runner = await run(store, pipeline(MOCK))
    try:
        got = await ended(store, "b1")
    finally:
        await runner.aclose()
    assert got.counts == {"succeeded": 2, "errored": 1, "canceled": 0, "expired": 0}
    out = await results(store, "b1")
    assert out["e0"]["type"] == "succeeded" and out["e0"]["message"]["content"][0]["text"] == "one two"
    assert out["e0"]["message"]["model"] == "claude-sonnet-4-6"
    assert out["e1"]["type"] == "errored"
    assert out["e1"]["error"]["type"] == "error"
    assert out["e1"]["error"]["error"]["type"] == "invalid_request_error"


def _counting(record: list[str], gate: asyncio.Event | None = None) -> tuple[Callable[..., Any], list[int]]:
    peak = [0, 0]  # now, max

    async def handler(call: Call, target: Target) -> Answer:
        peak[0] += 1
        peak[1] = max(peak[1], peak[0])
        try:
            record.append(target.model)
            if gate is not None:
                await gate.wait()
            else:
                await asyncio.sleep(0.01)
            return await message_answer(call, target)
        finally:
            peak[0] -= 1

    return handler, peak


async def test_concurrency_is_bounded_and_aliases_and_renames_apply(store: SqliteStore) -> None:
    config = {
        "upstreams": {"u": {"provider": "mock"}},
        "routes": [
            {"match": "claude-big", "upstream": "u", "model": "upstream-big"},
            {"match": "*", "upstream": "u"},
        ],
        "aliases": {"big": "claude-big"},
    }
    seen: list[str] = []
    handler, peak = _counting(seen)
    await add_batch(store, "b1", [params(model="big") for _ in range(7)] + [params(model="other")])
    runner = await run(store, pipeline(config, u=handler))
    try:
        got = await ended(store, "b1")
    finally:
        await runner.aclose()
    assert got.counts["succeeded"] == 8
    assert peak[1] == 2  # FAST.concurrency
    assert sorted(seen) == ["other"] + ["upstream-big"] * 7


async def test_a_dead_runners_entries_run_again_and_finished_ones_never(store: SqliteStore) -> None:
    seen: list[str] = []
    handler, _ = _counting(seen)
    await add_batch(store, "b1", [params(f"n{i}") for i in range(4)])
    # A runner that died (SIGKILL) holding entries 0 and 1; entry 2 had finished.
    assert len(await store.claim("dead", 2, lease=0.5, now=time.time())) == 2
    await store.finish(EntryKey("b1", 3), "succeeded", b'{"type":"succeeded","message":{}}', now=time.time())
    runner = await run(store, pipeline(MOCK, m=handler))
    try:
        got = await ended(store, "b1")
    finally:
        await runner.aclose()
    assert got.counts["succeeded"] == 4
    assert len(seen) == 3  # entries 0, 1 (after their lease) and 2; never 3


async def test_a_graceful_stop_gives_leases_back_at_once(store: SqliteStore) -> None:
    gate = asyncio.Event()
    seen: list[str] = []
    handler, _ = _counting(seen, gate)
    await add_batch(store, "b1", [params() for _ in range(3)])
    p = pipeline(MOCK, m=handler)
    first = await run(store, p, BatchesConfig(concurrency=2, poll_interval=0.02, lease_seconds=3600))
    while len(seen) < 2:
        await asyncio.sleep(0.01)
    await first.aclose()
    gate.set()
    second = await run(store, p, BatchesConfig(concurrency=2, poll_interval=0.02, lease_seconds=3600))
    try:
        got = await ended(store, "b1")
    finally:
        await second.aclose()
    assert got.counts["succeeded"] == 3 and len(seen) == 5


async def test_cancel_lets_running_entries_finish_and_cancels_the_rest(store: SqliteStore) -> None:
    gate = asyncio.Event()
    seen: list[str] = []
    handler, _ = _counting(seen, gate)
    await add_batch(store, "b1", [params() for _ in range(5)])
    runner = await run(store, pipeline(MOCK, m=handler))
    try:
        while len(seen) < 2:
            await asyncio.sleep(0.01)
        await store.cancel("b1", time.time())
        runner.wake()
        await asyncio.sleep(0.1)
        gate.set()
        got = await ended(store, "b1")
    finally:
        await runner.aclose()
    assert got.counts == {"succeeded": 2, "errored": 0, "canceled": 3, "expired": 0}
    assert got.cancel_initiated_at is not None and got.ended_at is not None


class _Later(SystemClock):
    """Wall time a day and a second ahead."""

    def time(self) -> float:
        return super().time() + 86401


async def test_unfinished_entries_expire(store: SqliteStore) -> None:
    await add_batch(store, "b1", [params() for _ in range(3)])
    runner = await run(store, pipeline(MOCK), clock=_Later())
    try:
        got = await ended(store, "b1")
    finally:
        await runner.aclose()
    assert got.counts == {"succeeded": 0, "errored": 0, "canceled": 0, "expired": 3}
    assert {r["type"] for r in (await results(store, "b1")).values()} == {"expired"}


async def test_a_rate_limit_waits_instead_of_failing_the_entry(store: SqliteStore) -> None:
    calls: list[float] = []

    async def handler(call: Call, target: Target) -> Answer:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RateLimited("slow down", headers=[("retry-after", "0.5")])
        return await message_answer(call, target)

    await add_batch(store, "b1", [params()])
    runner = await run(store, pipeline(MOCK, m=handler))
    try:
        got = await ended(store, "b1")
    finally:
        await runner.aclose()
    assert got.counts["succeeded"] == 1 and len(calls) == 2
    assert calls[1] - calls[0] >= 0.5


async def test_entries_are_observed_as_batch_door_calls(store: SqliteStore) -> None:
    from sidecar.core import NOOP_REQUEST, RequestObserver

    begun: list[tuple[str, str]] = []
    finished: list[BaseException | None] = []

    class Observer(RequestObserver):
        def finish(self, error: BaseException | None = None, *, cancelled: bool = False) -> None:
            finished.append(error)

    class Tel:
        def begin(self, door: str, method: str, headers: Any) -> RequestObserver:
            begun.append((door, method))
            return Observer() if door == "batch" else NOOP_REQUEST

    await add_batch(store, "b1", [params(), params("[mock error=not_found_error] x")])
    runner = await run(store, pipeline(MOCK), telemetry=Tel())  # type: ignore[arg-type]
    try:
        await ended(store, "b1")
    finally:
        await runner.aclose()
    assert begun == [("batch", "/v1/messages")] * 2
    assert sorted(type(e).__name__ for e in finished) == ["NoneType", "NotFound"]
