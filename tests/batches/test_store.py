"""The batch store contract, run against both stores (SQLite, and Redis on a real redis-server):
atomic create, a create staged in pieces and invisible until it commits, leases that expire, one result per entry, settling (cancel, expiry, end,
retention), paging both ways, results streamed in pages; then what each adds (a reopened SQLite
file, a killed create's staged entries deleted, two Redis clients sharing the batches)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.batches.redis import RedisStore
from sidecar.batches.sqlite import SqliteStore
from sidecar.batches.store import STAGE_TTL, BatchRecord, BatchStore, EntryKey, NewEntry
from tests.admission.conftest import RedisServer

T0 = 1_800_000_000.0
DAY = 86400.0


def batch(
    batch_id: str, n: int = 3, *, owner: str = "", at: float = T0
) -> tuple[BatchRecord, list[NewEntry]]:
    record = BatchRecord(id=batch_id, owner=owner, created_at=at, expires_at=at + DAY, total=n)
    entries = [NewEntry(f"c{i}", json.dumps({"i": i}).encode()) for i in range(n)]
    return record, entries


def redis_store(server: RedisServer, prefix: str) -> RedisStore:
    return RedisStore.from_url(server.url, key_prefix=prefix, timeout=10.0)


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BatchStore]:
    s: BatchStore
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "batches.sqlite3")
    else:
        # Each test its own keys on the module's redis-server.
        s = redis_store(request.getfixturevalue("redis_server"), f"t:{uuid.uuid4().hex}:")
    yield s
    await s.aclose()


async def lines(store: BatchStore, batch_id: str) -> list[dict[str, object]]:
    out = b"".join([chunk async for chunk in store.results(batch_id)])
    return [json.loads(line) for line in out.splitlines()]


async def test_create_claim_finish_end(store: BatchStore) -> None:
    await store.create(*batch("b1"))
    got = await store.get("b1")
    assert got is not None and got.status == "in_progress" and got.processing == 3
    claims = await store.claim("w1", 2, lease=30, now=T0)
    assert [(c.key.index, c.custom_id, json.loads(c.params)) for c in claims] == [
        (0, "c0", {"i": 0}),
        (1, "c1", {"i": 1}),
    ]
    # Leased entries are not handed out again while the lease lives.
    assert [c.key.index for c in await store.claim("w2", 5, lease=30, now=T0 + 1)] == [2]
    assert await store.claim("w3", 5, lease=30, now=T0 + 2) == []
    for i, kind in enumerate(["succeeded", "errored", "succeeded"]):
        assert await store.finish(EntryKey("b1", i), kind, b'{"type":"%s"}' % kind.encode(), now=T0 + 3)
    # Exactly one result per entry: a late second finish changes nothing.
    assert not await store.finish(EntryKey("b1", 0), "errored", b'{"type":"errored"}', now=T0 + 4)
    assert await store.settle(T0 + 5, retention=29 * DAY) == ["b1"]
    ended = await store.get("b1")
    assert ended is not None and ended.status == "ended" and ended.ended_at == T0 + 5
    assert ended.counts == {"succeeded": 2, "errored": 1, "canceled": 0, "expired": 0}
    assert [(x["custom_id"], x["result"]) for x in await lines(store, "b1")] == [
        ("c0", {"type": "succeeded"}),
        ("c1", {"type": "errored"}),
        ("c2", {"type": "succeeded"}),
    ]


async def test_an_expired_lease_is_claimed_again_and_release_delays(store: BatchStore) -> None:
    await store.create(*batch("b1", 2))
    first = await store.claim("dead", 2, lease=10, now=T0)
    assert len(first) == 2
    # The worker died: after its lease the entries go to another.
    again = await store.claim("w2", 2, lease=10, now=T0 + 11)
    assert [c.key.index for c in again] == [0, 1]
    # The dead worker cannot renew or release what it lost.
    await store.release("dead", [c.key for c in first], not_before=T0)
    assert await store.claim("w3", 2, lease=10, now=T0 + 12) == []
    await store.renew("w2", [again[0].key], until=T0 + 100)
    await store.release("w2", [again[1].key], not_before=T0 + 50)
    assert await store.claim("w3", 2, lease=10, now=T0 + 30) == []
    assert [c.key.index for c in await store.claim("w3", 2, lease=10, now=T0 + 50)] == [1]


async def test_cancel_settles_waiting_entries_and_lets_running_ones_finish(store: BatchStore) -> None:
    await store.create(*batch("b1", 3))
    running = await store.claim("w", 1, lease=60, now=T0)
    canceled = await store.cancel("b1", T0 + 1)
    assert canceled is not None and canceled.status == "canceling" and canceled.cancel_initiated_at == T0 + 1
    assert await store.claim("w", 5, lease=60, now=T0 + 2) == []  # nothing new starts
    assert await store.settle(T0 + 2, retention=DAY) == []  # one entry still runs
    assert await store.finish(running[0].key, "succeeded", b'{"type":"succeeded"}', now=T0 + 3)
    assert await store.settle(T0 + 3, retention=DAY) == ["b1"]
    got = await store.get("b1")
    assert got is not None and got.counts == {"succeeded": 1, "errored": 0, "canceled": 2, "expired": 0}
    again = await store.cancel("b1", T0 + 9)  # an ended batch stays as it is
    assert again is not None and again.status == "ended" and again.cancel_initiated_at == T0 + 1


async def test_expiry_and_retention(store: BatchStore) -> None:
    await store.create(*batch("b1", 2))
    claimed = await store.claim("w", 1, lease=60, now=T0)
    assert await store.finish(claimed[0].key, "succeeded", b'{"type":"succeeded"}', now=T0 + 1)
    assert await store.claim("w", 5, lease=60, now=T0 + DAY) == []  # past expires_at
    assert await store.settle(T0 + DAY, retention=DAY) == ["b1"]
    got = await store.get("b1")
    assert got is not None and got.counts["expired"] == 1 and got.counts["succeeded"] == 1
    assert [x["result"] for x in await lines(store, "b1")] == [{"type": "succeeded"}, {"type": "expired"}]
    await store.settle(T0 + 2 * DAY - 1, retention=DAY)
    assert (await store.get("b1")).archived_at is None  # type: ignore[union-attr]
    await store.settle(T0 + 2 * DAY, retention=DAY)
    archived = await store.get("b1")
    assert archived is not None and archived.archived_at == T0 + 2 * DAY
    assert await lines(store, "b1") == []


async def test_pages_newest_first_both_ways_and_per_owner(store: BatchStore) -> None:
    for i in range(5):
        await store.create(*batch(f"b{i}", 1, owner="k1" if i != 2 else "k2", at=T0 + i))
    first = await store.page("k1", 2)
    assert [r.id for r in first.records] == ["b4", "b3"] and first.has_more
    second = await store.page("k1", 2, after_id="b3")
    assert [r.id for r in second.records] == ["b1", "b0"] and not second.has_more
    back = await store.page("k1", 1, before_id="b1")
    assert [r.id for r in back.records] == ["b3"] and back.has_more
    assert [r.id for r in (await store.page(None, 10)).records] == ["b4", "b3", "b2", "b1", "b0"]
    assert (await store.page("k1", 10, after_id="b2")).records == []  # not k1's batch


async def test_results_stream_in_pages_and_delete(store: BatchStore) -> None:
    record, entries = batch("big", 2500)
    await store.create(record, entries)
    for claim in await store.claim("w", 2500, lease=60, now=T0):
        await store.finish(claim.key, "succeeded", b'{"type":"succeeded"}', now=T0)
    chunks = [chunk async for chunk in store.results("big")]
    assert len(chunks) == 3 and sum(c.count(b"\n") for c in chunks) == 2500
    assert await store.delete("big") and await store.get("big") is None and not await store.delete("big")


async def test_create_is_atomic(store: BatchStore) -> None:
    await store.create(*batch("b1", 1))
    with pytest.raises(Exception):  # noqa: B017 - the id is taken: nothing of the second is stored
        await store.create(*batch("b1", 4))
    got = await store.get("b1")
    assert got is not None and got.total == 1
    assert len(await store.claim("w", 10, lease=1, now=T0)) == 1


async def test_a_staged_create_is_invisible_until_it_commits(store: BatchStore) -> None:
    record, entries = batch("b1", 5)
    staged = await store.stage("b1", now=T0)
    await staged.add(entries[:2], now=T0)
    await staged.add(entries[2:], now=T0 + 1)
    # Readers see nothing of it: no batch, no page, no claim; settling leaves it alone.
    assert await store.get("b1") is None
    assert (await store.page(None, 10)).records == []
    assert await store.claim("w", 10, lease=30, now=T0 + 2) == []
    assert await store.settle(T0 + 2, retention=DAY) == []
    await staged.commit(record)
    await staged.discard()  # after a commit: nothing
    got = await store.get("b1")
    assert got is not None and got.total == 5 and got.status == "in_progress"
    claims = await store.claim("w", 10, lease=30, now=T0 + 3)
    assert [(c.key.index, c.custom_id) for c in claims] == [(i, f"c{i}") for i in range(5)]


async def test_a_discarded_create_leaves_nothing(store: BatchStore) -> None:
    _, entries = batch("b1", 1500)
    staged = await store.stage("b1", now=T0)
    await staged.add(entries, now=T0)
    await staged.discard()
    await staged.discard()
    assert await store.get("b1") is None
    # The id is free again, and the batch made with it holds only its own entries.
    await store.create(*batch("b1", 2))
    assert [c.key.index for c in await store.claim("w", 2000, lease=30, now=T0)] == [0, 1]


async def test_what_was_committed_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite3"
    first = SqliteStore(path)
    await first.create(*batch("b1", 2))
    await first.finish(EntryKey("b1", 0), "succeeded", b'{"type":"succeeded"}', now=T0)
    await first.aclose()
    second = SqliteStore(path)
    try:
        claims = await second.claim("w", 5, lease=1, now=T0)
        assert [c.key.index for c in claims] == [1]
    finally:
        await second.aclose()


async def test_a_killed_create_stays_invisible_and_is_deleted_after_the_stage_ttl(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite3"
    first = SqliteStore(path)
    _, entries = batch("b1", 3)
    staged = await first.stage("b1", now=T0)
    await staged.add(entries, now=T0 + 10)
    await first.aclose()  # the process dies mid-create: no commit, no discard
    second = SqliteStore(path)
    try:
        assert await second.get("b1") is None and await second.claim("w", 5, lease=1, now=T0) == []
        await second.settle(T0 + 10 + STAGE_TTL - 1, retention=DAY)
        assert second._db.execute("SELECT COUNT(*) FROM entries").fetchone() == (3,)
        await second.settle(T0 + 10 + STAGE_TTL, retention=DAY)
        assert second._db.execute("SELECT COUNT(*) FROM entries").fetchone() == (0,)
        # A create that was alive after all, silent past the TTL, cannot commit.
        slow = await second.stage("b2", now=T0)
        await slow.add(entries, now=T0)
        await second.settle(T0 + STAGE_TTL, retention=DAY)
        with pytest.raises(RuntimeError, match="deleted as stale"):
            await slow.add(entries, now=T0 + STAGE_TTL)
        with pytest.raises(RuntimeError, match="incomplete"):
            await slow.commit(BatchRecord(id="b2", owner="", created_at=T0, expires_at=T0 + DAY, total=3))
        assert await second.get("b2") is None
    finally:
        await second.aclose()


async def test_a_killed_create_on_redis_expires(redis_server: RedisServer) -> None:
    store = redis_store(redis_server, f"t:{uuid.uuid4().hex}:")
    try:
        staged = await store.stage("b1", now=T0)
        await staged.add(batch("b1", 3)[1], now=T0)
        keys = await store.client.call("KEYS", f"{store.prefix}*")
        assert len(keys) == 3 and all(k.startswith(f"{store.prefix}stage:") for k in keys)
        for key in keys:
            assert 0 < await store.client.call("TTL", key) <= STAGE_TTL
    finally:
        await store.aclose()


async def test_two_redis_clients_share_batches_and_never_claim_an_entry_twice(
    redis_server: RedisServer,
) -> None:
    prefix = f"t:{uuid.uuid4().hex}:"
    a, b = redis_store(redis_server, prefix), redis_store(redis_server, prefix)
    try:
        await a.create(*batch("b1", 40, owner="k1"))
        await b.create(*batch("b2", 40, owner="k2", at=T0 + 1))
        # Either replica answers for either batch, and lists both.
        got = await b.get("b1")
        assert got is not None and got.owner == "k1" and got.total == 40
        assert [r.id for r in (await a.page(None, 10)).records] == ["b2", "b1"]
        # Claims racing on one Redis: each entry goes to one of them, oldest batch first.
        claims = await asyncio.gather(
            *(s.claim(f"w{i}", 7, lease=30, now=T0 + 2) for i, s in enumerate([a, b] * 6))
        )
        keys = [c.key for group in claims for c in group]
        assert len(keys) == 80 and len(set(keys)) == 80
        assert sorted(keys, key=lambda k: (k.batch_id, k.index))[:40] == [
            EntryKey("b1", i) for i in range(40)
        ]
        # Finishes racing for one entry: exactly one result is stored and counted.
        won = await asyncio.gather(
            *(
                s.finish(EntryKey("b1", 0), "succeeded", b'{"type":"succeeded"}', now=T0 + 3)
                for s in [a, b] * 4
            )
        )
        assert sum(won) == 1
        got = await a.get("b1")
        assert got is not None and got.counts["succeeded"] == 1 and got.processing == 39
    finally:
        await a.aclose()
        await b.aclose()


async def test_redis_create_is_all_or_nothing_and_exact(redis_server: RedisServer) -> None:
    store = redis_store(redis_server, f"t:{uuid.uuid4().hex}:")
    try:
        record, entries = batch("b1", 3, owner="k")
        record.created_at = T0 + 0.123456789
        record.headers = {"anthropic-version": "2023-06-01"}
        await store.create(record, entries)
        got = await store.get("b1")
        assert got == record  # times come back exactly (a float's repr), headers too
        big = [NewEntry(f"e{i}", b'{"text":"%s"}' % (b"x" * 1000)) for i in range(5000)]
        with pytest.raises(Exception):  # noqa: B017 - the id is taken
            await store.create(
                BatchRecord(id="b1", owner="k", created_at=T0, expires_at=T0 + DAY, total=5000), big
            )
        got = await store.get("b1")
        assert got is not None and got.total == 3
        # Its entries went up in chunks to staging keys, dropped when the create failed.
        assert await store.client.call("KEYS", f"{store.prefix}stage:*") == []
        await store.create(
            BatchRecord(id="b2", owner="k", created_at=T0, expires_at=T0 + DAY, total=5000), big
        )
        claims = await store.claim("w", 10_000, lease=30, now=T0)
        assert len(claims) == 5003 and {len(c.params) for c in claims if c.key.batch_id == "b2"} == {1011}
        # A forwarded batch: recorded with its snapshot, never claimed or settled.
        fwd = BatchRecord(
            id="f1", owner="k", location="up", created_at=T0 + 5, expires_at=T0 + DAY, snapshot=b"{}"
        )
        await store.create(fwd, [])
        await store.update_snapshot("f1", b'{"x":1}', "ended")
        got = await store.get("f1")
        assert got is not None and got.snapshot == b'{"x":1}' and got.status == "ended" and not got.local
        assert await store.claim("w", 10, lease=30, now=T0 + 10) == []
    finally:
        await store.aclose()
